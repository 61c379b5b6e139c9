"""The email that delivers a finished export: the file attached, or a link when it is large."""

from __future__ import annotations

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.urls import reverse

from tasks.models import Task


def export_email_send(*, task: Task, stored_name: str, post_count: int) -> bool:
    """Send the export to its owner. Returns False when the user has no address to send to."""
    user = task.user
    if not user.email:
        return False
    size = default_storage.size(stored_name)
    attach = size <= settings.EXPORT_EMAIL_ATTACHMENT_MAX_BYTES
    file_name = stored_name.rsplit("/", 1)[-1]
    context = {
        "user": user,
        "post_count": post_count,
        "attached": attach,
        "file_name": file_name,
        "size": size,
        "download_url": settings.SITE_URL + reverse("tasks:download", args=[task.id]),
        "task_url": settings.SITE_URL + reverse("exports:detail", args=[task.id]),
    }
    message = EmailMessage(
        subject="Your posts export is ready",
        body=render_to_string("exports/email/export_ready.txt", context),
        to=[user.email],
    )
    if attach:
        with default_storage.open(stored_name, "rb") as fh:
            message.attach(file_name, fh.read(), "application/json")
    message.send()
    return True

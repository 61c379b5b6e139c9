"""The export kind: a user's posts, streamed into a JSON file, stored and emailed."""

from __future__ import annotations

from django.conf import settings
from django.template.loader import get_template

from live_tasks import TaskKind, register

from .services import EXPORT_POSTS, export_file_name, export_run


def export_warm_up() -> None:
    """Before a worker forks: compile the email's template."""
    get_template("exports/email/export_ready.txt")


export_posts = register(
    TaskKind(
        name=EXPORT_POSTS,
        label="Posts export",
        run=export_run,
        timeout=lambda: settings.EXPORT_JOB_TIMEOUT,
        url_name="exports:detail",
        list_url_name="exports:list",
        download_name=export_file_name,
        cancelled_detail="Cancelled. Nothing was emailed.",
        warm_up=export_warm_up,
    )
)

"""RQ entry points for the account emails: the welcome after sign-up, and a password reset link."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode


def send_welcome_email_job(user_id: int) -> str:
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None or not user.email:
        return "skipped"
    body = render_to_string("accounts/email/welcome.txt", {"user": user, "site_url": settings.SITE_URL})
    send_mail("Welcome to Exports", body, None, [user.email])
    return "sent"


def send_password_reset_email_job(user_id: int) -> str:
    """The reset link is made here, in the worker, so that no token ever sits in Redis; it stays
    valid until the password changes or PASSWORD_RESET_TIMEOUT passes, like Django's own."""
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.email or not user.has_usable_password():
        return "skipped"
    path = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    context = {
        "user": user,
        "reset_url": settings.SITE_URL + path,
        "valid_hours": settings.PASSWORD_RESET_TIMEOUT // 3600,
    }
    body = render_to_string("accounts/email/password_reset.txt", context)
    send_mail("Reset your Exports password", body, None, [user.email])
    return "sent"

"""RQ entry point for the welcome email sent after sign-up."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.template.loader import render_to_string


def send_welcome_email_job(user_id: int) -> str:
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None or not user.email:
        return "skipped"
    body = render_to_string("accounts/email/welcome.txt", {"user": user, "site_url": settings.SITE_URL})
    send_mail("Welcome to Exports", body, None, [user.email])
    return "sent"

"""`manage.py ensure_demo`: the demo login that `make run` prints (idempotent; development only)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from posts.services import posts_seed

DEMO_USERNAME, DEMO_PASSWORD, DEMO_POSTS = "demo", "demo", 5000
ADMIN_USERNAME, ADMIN_PASSWORD = "admin", "admin"


class Command(BaseCommand):
    help = "Create the demo user (with posts) and a staff admin, for local development."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("ensure_demo creates well-known passwords; it runs only with DEBUG=1.")
        User = get_user_model()
        demo, created = User.objects.get_or_create(username=DEMO_USERNAME, defaults={"email": "demo@example.com"})
        if created:
            demo.set_password(DEMO_PASSWORD)
            demo.save()
            posts_seed(author=demo, count=DEMO_POSTS)
        if not User.objects.filter(username=ADMIN_USERNAME).exists():
            User.objects.create_superuser(ADMIN_USERNAME, "admin@example.com", ADMIN_PASSWORD)
        self.stdout.write(
            f"Open {settings.SITE_URL}/ and log in as {DEMO_USERNAME} / {DEMO_PASSWORD} "
            f"(staff: {ADMIN_USERNAME} / {ADMIN_PASSWORD})."
        )

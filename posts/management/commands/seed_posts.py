"""`manage.py seed_posts USERNAME COUNT`: bulk demo posts for a user, created if missing."""

from __future__ import annotations

import secrets
from typing import Any, TextIO, cast

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from posts.services import posts_seed

PROGRESS_BAR_FROM = 20_000


class Command(BaseCommand):
    help = "Create COUNT posts for USERNAME (creating the user, with a printed password, if missing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("count", type=int)
        parser.add_argument("--password", help="Password for a newly created user (default: random).")

    def handle(self, *args: Any, username: str, count: int, password: str | None, **options: Any) -> None:
        if count < 0:
            raise CommandError("COUNT must be zero or more.")
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            password = password or secrets.token_urlsafe(12)
            user = User.objects.create_user(username=username, email=f"{username}@example.com", password=password)
            self.stdout.write(f"Created user {username!r} with password: {password}")

        show_bar = count >= PROGRESS_BAR_FROM and options["verbosity"] > 0
        out = cast("TextIO", self.stderr._out)  # the stream OutputWrapper wraps (not in django-stubs)
        with tqdm(total=count, unit="post", disable=not show_bar, file=out) as bar:
            created = posts_seed(author=user, count=count, on_batch=bar.update)
        self.stdout.write(self.style.SUCCESS(f"Created {created:,} posts for {username}."))

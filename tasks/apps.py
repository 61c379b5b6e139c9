from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class TasksConfig(AppConfig):
    """The generic core of long background tasks; kinds register themselves from their own apps."""

    name = "tasks"

    def ready(self) -> None:
        from . import checks as live_tasks_checks

        for check in live_tasks_checks.ALL_CHECKS:
            # `manage.py check --tag live_tasks` runs only these; the URL one runs with Django's too.
            tags = ("live_tasks", checks.Tags.urls) if check is live_tasks_checks.check_kind_urls else ("live_tasks",)
            checks.register(check, *tags)

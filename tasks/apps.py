from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core import checks


class TasksConfig(AppConfig):
    """The generic core of long background tasks; kinds register themselves from their own apps."""

    name = "tasks"

    def ready(self) -> None:
        checks.register(check_kinds)


def check_kinds(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Each registered kind's page must resolve, so that a task's `url` always works."""
    import uuid

    from django.urls import NoReverseMatch, reverse

    from .kinds import all_kinds

    errors: list[checks.CheckMessage] = []
    for kind in all_kinds():
        try:
            reverse(kind.url_name, kwargs={"task_id": uuid.uuid4()})
        except NoReverseMatch:
            errors.append(
                checks.Error(
                    f"Task kind {kind.name!r}: url_name {kind.url_name!r} does not resolve with a task_id.",
                    id="tasks.E001",
                )
            )
    return errors

from __future__ import annotations

from django.apps import AppConfig


class TestKindsConfig(AppConfig):
    """Kinds of task that exist only in the tests (installed by tests/library/settings.py and the
    site's tests/settings.py), as django-tasks keeps test tasks: they drive every generic path of
    the core without any real work."""

    name = __package__ or "tests.library.testapp"
    label = "test_task_kinds"

    def ready(self) -> None:
        from live_tasks.conf import live_settings

        if live_settings.QUEUE_BACKEND == "celery":
            from .. import celery_app  # noqa: F401  # the site's app, as its project/__init__.py loads it

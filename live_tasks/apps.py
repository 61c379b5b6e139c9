from __future__ import annotations

import importlib.util
from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.utils.module_loading import autodiscover_modules
from django.utils.translation import gettext_lazy as _


class LiveTasksConfig(AppConfig):
    """Long background tasks with live progress: the core, the push layer, and the kinds that any
    installed app declares in its `kinds.py` (found here, as the admin finds `admin.py`)."""

    name = "live_tasks"
    label = "live_tasks"
    verbose_name = _("Live tasks")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_out
        from django.db.models.signals import post_delete, post_save, pre_save

        from . import checks as live_tasks_checks
        from . import signals, stats
        from .push import revocation

        for check in live_tasks_checks.ALL_CHECKS:
            # `manage.py check --tag live_tasks` runs only these; the URL one runs with Django's too.
            tags = ("live_tasks", checks.Tags.urls) if check is live_tasks_checks.check_kind_urls else ("live_tasks",)
            checks.register(check, *tags)

        # A live socket ends with the authority of its session (live_tasks/push/revocation.py).
        user_model = get_user_model()
        uid = "live_tasks.push.revocation"
        user_logged_out.connect(revocation.on_user_logged_out, dispatch_uid=uid)
        pre_save.connect(revocation.on_user_pre_save, sender=user_model, dispatch_uid=uid)
        post_save.connect(revocation.on_user_post_save, sender=user_model, dispatch_uid=uid)
        post_delete.connect(revocation.on_user_post_delete, sender=user_model, dispatch_uid=uid)

        # The metrics' task events (live_tasks/stats.py), counted in Redis for every process at once.
        uid = "live_tasks.stats"
        signals.task_enqueued.connect(stats.on_task_enqueued, dispatch_uid=uid)
        signals.task_started.connect(stats.on_task_started, dispatch_uid=uid)
        signals.task_finished.connect(stats.on_task_finished, dispatch_uid=uid)

        autodiscover_modules("kinds")

        # Celery's job and worker hooks are registered by importing them (with the site's Celery app).
        from .conf import live_settings

        if live_settings.QUEUE_BACKEND == "celery" and importlib.util.find_spec("celery") is not None:
            from .queue import celery  # noqa: F401  # else live_tasks.E011 names it

        # The `@task` functions' kind and Django's task signals, where TASKS names this backend.
        if any(
            backend.get("BACKEND") == "live_tasks.backends.LiveTasksBackend" for backend in _tasks_setting().values()
        ):
            from . import backends

            uid = "live_tasks.backends"
            signals.task_started.connect(backends.on_task_started, dispatch_uid=uid)
            signals.task_finished.connect(backends.on_task_finished, dispatch_uid=uid)


def _tasks_setting() -> dict[str, dict[str, Any]]:
    from django.conf import settings

    return getattr(settings, "TASKS", None) or {}

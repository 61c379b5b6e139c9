from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        from live_tasks.conf import live_settings

        # On Celery the account emails are a Celery task (accounts/celery_tasks.py): registered here,
        # in every process (the worker runs it, web and the scheduler send it).
        if live_settings.QUEUE_BACKEND == "celery":
            from . import celery_tasks  # noqa: F401

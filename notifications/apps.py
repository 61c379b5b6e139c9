from __future__ import annotations

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """This site's live endpoint and running-tasks strip, built on the push layer of live_tasks."""

    name = "notifications"

from __future__ import annotations

from django.apps import AppConfig


class ExportsConfig(AppConfig):
    """The export kind of task: a user's posts as one JSON file."""

    name = "exports"

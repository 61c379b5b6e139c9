from __future__ import annotations

from django.apps import AppConfig


class ImportsConfig(AppConfig):
    """The import kind of task: posts brought back from an export file."""

    name = "imports"

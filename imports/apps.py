from __future__ import annotations

from django.apps import AppConfig


class ImportsConfig(AppConfig):
    """The import kind of task: posts brought back from an export file."""

    name = "imports"

    def ready(self) -> None:
        from . import kind  # noqa: F401 -- registers the kind with the core

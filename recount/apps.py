from __future__ import annotations

from django.apps import AppConfig


class RecountConfig(AppConfig):
    """The site's example built only on django.tasks: a `@task` function, run by the library's backend."""

    name = "recount"

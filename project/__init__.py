# The site's Celery app, loaded with Django (project/celery.py): the app that the library's and the
# accounts' Celery tasks belong to when QUEUE_BACKEND=celery. Importing it connects to nothing.
from __future__ import annotations

from .celery import app as celery_app

__all__ = ["celery_app"]

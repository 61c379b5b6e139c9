"""The test project's Celery app, as a site has its own (README, "On Celery"): configured from the
Django settings' CELERY_* names, and loaded by the test app when the session runs on Celery."""

from __future__ import annotations

from celery import Celery  # type: ignore[import-untyped,unused-ignore]

app = Celery(__package__ or "tests.library")
app.config_from_object("django.conf:settings", namespace="CELERY")

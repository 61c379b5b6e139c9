"""The site's Celery app, used when QUEUE_BACKEND=celery (README, "Choosing a queue: RQ or Celery").

Django's usual pattern: configured from the settings' CELERY_* names (project/settings.py), and
loaded with the project package (project/__init__.py), so that `celery -A project worker` and
every Django process share one app. Its tasks are the library's `live_tasks.run_task` (imported by
live_tasks' AppConfig.ready on Celery) and the account emails' `accounts.send_email` (imported by
accounts' AppConfig.ready): no autodiscovery, which would import every app's tasks.py (recount's is
django.tasks', not Celery's).
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

app = Celery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")

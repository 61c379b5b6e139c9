"""The library's settings: one dict, `LIVE_TASKS = {...}`, every key optional.

Read through `live_settings.NAME`, which looks the key up in `settings.LIVE_TASKS` at each access
(so `override_settings` works) and falls back to the default here. Nothing is read at import time.
The reference, with what each key means, is docs/settings.md; `manage.py check` names an unknown key
(live_tasks.E008).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # What runs the jobs: "rq" (django-rq on Redis) or "celery" (the site's Celery app and broker).
    "QUEUE_BACKEND": "rq",
    # The queue that task jobs go to: on RQ a key of RQ_QUEUES, served by `rqworker <it>`; on Celery
    # a queue of the broker, served by `celery worker -Q <it>`.
    "QUEUE": "default",
    # The live socket's path, as the browser asks for it (live_tasks.asgi.websocket_application).
    "WEBSOCKET_PATH": "/ws/tasks/",
    # The template that the library's pages extend; it must have the blocks `title` and `content`.
    "BASE_TEMPLATE": "live_tasks/base.html",
    # Minimum seconds between two progress updates of one task (row write, signal, live push).
    "PROGRESS_INTERVAL": 0.25,
    # A transient fault (live_tasks.with_retries' `transient`) is retried this many times in all, with
    # exponential backoff from RETRY_BACKOFF seconds, before the task fails.
    "RETRY_ATTEMPTS": 4,
    "RETRY_BACKOFF": 2.0,
    # Result files are deleted after this many days (the task then shows "expired")...
    "RESULT_RETENTION_DAYS": 7,
    # ...and finished task rows after this many, with their files and job records.
    "ROW_RETENTION_DAYS": 30,
    # Inputs (uploads) and half-written outputs, named by task id; None: MEDIA_ROOT/live-tasks-work.
    # Every process that may clean up after a killed job (worker, scheduler, web) must reach it.
    "WORK_DIR": None,
    # The queue keeps a failed job's record this long for operators; a cancelled job's is deleted at once.
    "FAILED_JOB_TTL_SECONDS": 7 * 24 * 3600,
    # Task launches (any kind) per user in each window; past it: HTTP 429 with Retry-After.
    "LAUNCH_LIMIT": 20,
    "LAUNCH_WINDOW_SECONDS": 60,
    # Stored result files per user, in bytes; a launch that would pass it is refused (409).
    "RESULT_QUOTA_BYTES": 512 * 1024 * 1024,
    # Open live sockets per user over every daphne; past it the oldest is closed with 4429.
    "SOCKETS_PER_USER": 20,
    # Each socket re-checks its session about this often (with jitter): the bound for changes made
    # behind Django's back (an expired session row deleted, a user deactivated in SQL).
    "SESSION_RECHECK_SECONDS": 30.0,
    # The worker heartbeats a running job this often...
    "JOB_HEARTBEAT_SECONDS": 5,
    # ...so a running task whose job has not heartbeaten for this long lost its worker.
    "LOST_AFTER_SECONDS": 20,
    # A queued task whose job is missing from Redis this long after its creation is enqueued again.
    "QUEUED_GRACE_SECONDS": 15,
    # Workers and their work horses run this much "nicer" than web processes (0: same priority).
    "WORKER_NICENESS": 10,
    # How often `manage.py task_scheduler` runs the safety net...
    "RECONCILE_INTERVAL_SECONDS": 10,
    # ...and how old its last pass may be before the health view answers 503.
    "SAFETY_NET_MAX_AGE_SECONDS": 60,
    # With result files in an S3 bucket: a download (GET or HEAD, after the owner check) is a 302 to
    # a presigned URL of the bucket that expires within 60 s. False: the web process streams the
    # file (byte ranges too), for a bucket that browsers cannot reach. No effect on the local disk.
    "DOWNLOAD_REDIRECT": True,
    # The bearer token that Prometheus sends to live_tasks:metrics (live_tasks.metrics); None: the
    # endpoint answers 404. Needs prometheus-client (the extra django-live-tasks[metrics]).
    "METRICS_TOKEN": None,
}


class LiveTasksSettings:
    """`live_settings.PROGRESS_INTERVAL`: the site's value if set, else the default."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"LIVE_TASKS has no setting {name!r}.")
        return user_settings().get(name, DEFAULTS[name])

    @property
    def work_dir(self) -> Path:
        configured = self.WORK_DIR
        return Path(configured) if configured else Path(settings.MEDIA_ROOT) / "live-tasks-work"


def user_settings() -> dict[str, Any]:
    value = getattr(settings, "LIVE_TASKS", None)
    return value if isinstance(value, dict) else {}


live_settings = LiveTasksSettings()

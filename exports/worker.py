"""The RQ worker class of this project (settings.RQ["WORKER_CLASS"]), used by `rqworker`."""

from __future__ import annotations

import logging

from django.conf import settings
from rq import Worker

from .errors import WORKER_LOST
from .files import partial_discard
from .task_state import task_mark_failed

logger = logging.getLogger(__name__)


class TaskWorker(Worker):
    """RQ's forking worker, plus two things the task rows need.

    - Running jobs heartbeat every WORKER_JOB_HEARTBEAT_SECONDS instead of every 30 s, so the
      safety net (exports/reconcile.py) tells a lost worker from a slow one within seconds.
    - When a work horse dies (OOM killer, SIGKILL) its task is ended at once, here in the parent.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("job_monitoring_interval", settings.WORKER_JOB_HEARTBEAT_SECONDS)
        super().__init__(*args, **kwargs)

    def handle_work_horse_killed(self, job, retpid, ret_val, rusage) -> None:
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        partial_discard(job.id)
        if task_mark_failed(job.id, error=WORKER_LOST):
            logger.warning("Task %s failed: its work horse died (waitpid status %s)", job.id, ret_val)

"""The RQ worker class of this project (settings.RQ["WORKER_CLASS"]), used by `rqworker`."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from rq import Worker
from rq.job import JobStatus

from .cleanup import task_cleanup
from .reconcile import task_fail_worker_lost

logger = logging.getLogger(__name__)


class TaskWorker(Worker):
    """RQ's forking worker, plus two things the task rows need.

    - Running jobs heartbeat every WORKER_JOB_HEARTBEAT_SECONDS instead of every 30 s, so the
      safety net (tasks/reconcile.py) tells a lost worker from a slow one within seconds.
    - When a work horse dies (OOM killer, SIGKILL) its task is ended at once, here in the parent,
      and cleaned up: the horse was the only writer.
    - A job stopped by a cancel leaves no record: RQ would keep it in its failed registry (for its
      failure_ttl); a cancel is not a failure an operator needs to see.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("job_monitoring_interval", settings.WORKER_JOB_HEARTBEAT_SECONDS)
        super().__init__(*args, **kwargs)

    def handle_work_horse_killed(self, job: Any, retpid: int, ret_val: int, rusage: Any) -> None:
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        if task_fail_worker_lost(job.id):
            logger.warning("Task %s failed: its work horse died (waitpid status %s)", job.id, ret_val)
        task_cleanup(job.id)

    def handle_job_failure(self, job: Any, queue: Any, *args: Any, **kwargs: Any) -> None:
        super().handle_job_failure(job, queue, *args, **kwargs)
        try:
            if job.get_status(refresh=True) == JobStatus.STOPPED:
                job.delete()
        except Exception:
            logger.exception("Could not delete the record of stopped job %s", job.id)

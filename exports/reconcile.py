"""The safety net: end or re-enqueue tasks whose RQ job vanished, failed or lost its worker.

RQ on its own notices a whole killed worker only when the job's heartbeat key expires and some
worker's maintenance pass runs (up to ~11 minutes). Our workers heartbeat every
WORKER_JOB_HEARTBEAT_SECONDS, and this check, run every TASK_RECONCILE_INTERVAL_SECONDS by the
scheduler and on demand when a user relaunches, ends such a task within about half a minute.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from redis.exceptions import RedisError
from rq.job import JobStatus

from .errors import UNEXPECTED, WORKER_LOST
from .files import partial_discard
from .models import Task
from .queue import export_job_enqueue, export_job_fetch
from .task_state import task_mark_cancelled, task_mark_failed, task_set_detail

logger = logging.getLogger(__name__)


def task_reconcile(task: Task) -> str | None:
    """Bring one unfinished task in line with its job. Returns what was done, or None."""
    now = timezone.now()
    task_id = str(task.id)
    job = export_job_fetch(task_id)

    if job is None:
        if task.status == Task.Status.QUEUED:
            if now - task.created_at < timedelta(seconds=settings.TASK_QUEUED_GRACE_SECONDS):
                return None  # the enqueue after commit may still be on its way
            # Never started, so running it now cannot do anything twice.
            export_job_enqueue(task_id)
            task_set_detail(task_id, "Queued again after the job queue lost it.")
            return "requeued"
        return _fail(task_id, WORKER_LOST)

    status = job.get_status()
    if status in (JobStatus.STOPPED, JobStatus.CANCELED):
        partial_discard(task_id)
        return "cancelled" if task_mark_cancelled(task_id) else None
    if status == JobStatus.FAILED:
        return _fail(task_id, WORKER_LOST if "terminated unexpectedly" in (job.exc_info or "") else None)
    if status == JobStatus.FINISHED:
        return _fail(task_id, "The export ended without producing a file.")
    # Started covers a worker that died before it could even mark the task running.
    if status == JobStatus.STARTED:
        heartbeat = job.last_heartbeat or job.started_at
        if heartbeat and now - heartbeat > timedelta(seconds=settings.TASK_LOST_AFTER_SECONDS):
            return _fail(task_id, WORKER_LOST)
    return None


def _fail(task_id: str, error: str | None) -> str | None:
    partial_discard(task_id)
    if task_mark_failed(task_id, error=error or UNEXPECTED):
        logger.warning("Task %s ended by the safety net: %s", task_id, error or "job failed")
        return "failed"
    return None


def tasks_reconcile() -> dict[str, int]:
    """Check every unfinished task; returns counts of what was done."""
    done: dict[str, int] = {}
    for task in Task.objects.unfinished():
        try:
            outcome = task_reconcile(task)
        except RedisError:
            logger.warning("Redis unavailable; reconciliation postponed")
            break
        if outcome:
            done[outcome] = done.get(outcome, 0) + 1
    return done

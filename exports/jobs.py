"""RQ entry points for exports: take ids, load rows, call services, own the failure handling."""

from __future__ import annotations

import logging

from .errors import user_error_for
from .files import partial_discard
from .reconcile import tasks_reconcile
from .services import export_produce, exports_expire
from .task_state import TaskNoLongerRunning, task_mark_cancelled, task_mark_failed, task_mark_running

logger = logging.getLogger(__name__)


def export_posts_job(task_id: str) -> str:
    task = task_mark_running(task_id)
    if task is None:
        logger.info("Export %s is no longer queued (cancelled or gone); skipping", task_id)
        return "skipped"
    try:
        export_produce(task=task)
    except TaskNoLongerRunning:
        logger.info("Export %s was ended while running (cancelled?); stopped", task_id)
        return "stopped"
    except BaseException as exc:
        logger.exception("Export %s failed", task_id)
        task_mark_failed(task_id, error=user_error_for(exc))
        raise  # RQ records the job in its failed registry for operators
    return "succeeded"


def export_job_stopped(job, connection) -> None:
    """RQ's on_stopped callback, run by the worker after a stop-job command killed the horse."""
    partial_discard(job.id)
    task_mark_cancelled(job.id)


def tasks_reconcile_job() -> dict[str, int]:
    """Scheduled: the safety net for lost jobs (exports/reconcile.py)."""
    return tasks_reconcile()


def exports_expire_job() -> int:
    """Scheduled: delete export files past the retention period."""
    return exports_expire()

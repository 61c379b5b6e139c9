"""The safety net: bring every task in line with what the job queue says of its job, as one table.

RQ on its own notices a whole killed worker only when the job's heartbeat key expires and some
worker's maintenance pass runs (up to ~11 minutes). Our workers heartbeat every
LIVE_TASKS["JOB_HEARTBEAT_SECONDS"], and this check, run every LIVE_TASKS["RECONCILE_INTERVAL_SECONDS"] by the
scheduler (live_tasks/scheduler.py) and on demand when a user relaunches, ends such a task within
about half a minute, re-enqueues a queued task whose job the queue lost (Redis flushed, a broker
restarted without persistence), with its own kind's job,
and finishes the cleanup of failed and cancelled tasks.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext

from .cleanup import task_cleanup
from .conf import live_settings
from .errors import kind_unavailable_error, timed_out_error, unexpected_error, worker_lost_error
from .kinds import UnknownTaskKind
from .models import Task
from .queue import JobState, task_job_enqueue, task_job_state
from .state import task_mark_cancelled, task_mark_failed, task_set_detail

logger = logging.getLogger(__name__)


class Do(enum.Enum):
    NOTHING = "nothing"
    # Never started (the row is still queued). Should the lost job run after all (a work horse had
    # taken it), only one of the two runs passes task_mark_running (queued -> running) and does
    # the work; the other finds the task running or ended and skips (live_tasks/jobs.py).
    REQUEUE = "requeue"
    FAIL_LOST = "fail, worker lost"
    FAIL_IF_SILENT = "fail as lost if its heartbeat stopped"
    FAIL_FROM_JOB = "fail, as the job did"
    FAIL_NO_RESULT = "fail, the job ended without a result"
    CANCEL = "cancel, as the job was stopped"
    CLEANUP = "clean up"
    CLEANUP_IF_SILENT = "clean up once its heartbeat stopped"


# (job state, task state) -> what to do. "ended" is a failed or cancelled task awaiting cleanup.
TABLE: dict[tuple[str, str], Do] = {
    ("missing", "queued"): Do.REQUEUE,
    ("missing", "running"): Do.FAIL_LOST,
    ("missing", "ended"): Do.CLEANUP,
    ("waiting", "queued"): Do.NOTHING,
    # Put back on the queue: the run that started it is gone (or orphaned); failed here, the job
    # finds its task no longer queued when it runs again and skips, so it never runs twice.
    ("waiting", "running"): Do.FAIL_LOST,
    ("waiting", "ended"): Do.CLEANUP,  # the job will find its task ended and skip it
    ("started", "queued"): Do.FAIL_IF_SILENT,  # a worker may die before it marks the task running
    ("started", "running"): Do.FAIL_IF_SILENT,
    ("started", "ended"): Do.CLEANUP_IF_SILENT,  # a cancelled job may still be stopping
    ("finished", "queued"): Do.FAIL_NO_RESULT,
    ("finished", "running"): Do.FAIL_NO_RESULT,
    ("finished", "ended"): Do.CLEANUP,
    ("failed", "queued"): Do.FAIL_FROM_JOB,
    ("failed", "running"): Do.FAIL_FROM_JOB,
    ("failed", "ended"): Do.CLEANUP,
    ("stopped", "queued"): Do.CANCEL,
    ("stopped", "running"): Do.CANCEL,
    ("stopped", "ended"): Do.CLEANUP,
}


def _task_state(task: Task) -> str:
    return task.status if not task.is_finished else "ended"


def _silent(job: JobState) -> bool:
    heartbeat = job.heartbeat
    return heartbeat is None or timezone.now() - heartbeat > timedelta(seconds=live_settings.LOST_AFTER_SECONDS)


def task_fail_worker_lost(task_id: str) -> bool:
    """For the worker that saw its job's process die: the task fails "worker lost" (if still running)."""
    return _fail_with(task_id, worker_lost_error)


def task_fail_timed_out(task_id: str) -> bool:
    """For the worker that killed a job past its hard time limit (Celery's): the task fails "timed out"."""
    return _fail_with(task_id, timed_out_error)


def _fail_with(task_id: str, error_for: Callable[[str], str]) -> bool:
    task = Task.objects.filter(pk=task_id).first()
    if task is None:
        return False
    with task.launch_language():
        return task_mark_failed(task_id, error=error_for(task.kind_label)) is not None


def task_reconcile(task: Task, *, cleanup: bool = True) -> str | None:
    """Bring one task in line with its job. Returns what was done, or None. Raises one of
    live_tasks.queue.QUEUE_ERRORS.

    `cleanup=False` only ends the task (a relaunch does this inside its request): the cleanup it
    owes, which for an import may be a million staged posts to delete, stays with the scheduler's
    next pass, which finds the task by its `needs_cleanup` flag.
    """
    with task.launch_language():
        return _reconcile(task, cleanup=cleanup)


def _reconcile(task: Task, *, cleanup: bool) -> str | None:
    task_id = str(task.id)
    job = task_job_state(task_id)
    action = TABLE[(job.phase, _task_state(task))]

    if action in (Do.FAIL_IF_SILENT, Do.CLEANUP_IF_SILENT):
        if not _silent(job):
            return None
        action = Do.FAIL_LOST if action is Do.FAIL_IF_SILENT else Do.CLEANUP

    if action is Do.NOTHING:
        return None
    if action is Do.REQUEUE:
        if timezone.now() - task.created_at < timedelta(seconds=live_settings.QUEUED_GRACE_SECONDS):
            return None  # the enqueue after commit may still be on its way
        try:
            kind = task.kind_spec
        except UnknownTaskKind:
            return _fail(task_id, kind_unavailable_error(), cleanup=cleanup)
        task_job_enqueue(task_id, kind=kind, language=task.language)
        task_set_detail(task_id, gettext("Queued again after the job queue lost it."))
        return "requeued"
    if action is Do.CLEANUP:
        return "cleaned up" if cleanup and task_cleanup(task_id) else None
    if action is Do.CANCEL:
        ended = task_mark_cancelled(task_id)
        if cleanup:
            task_cleanup(task_id)
        return "cancelled" if ended else None
    if action is Do.FAIL_LOST:
        return _fail(task_id, worker_lost_error(task.kind_label), cleanup=cleanup)
    if action is Do.FAIL_NO_RESULT:
        return _fail(task_id, unexpected_error(task.kind_label), cleanup=cleanup)
    assert action is Do.FAIL_FROM_JOB
    error = worker_lost_error(task.kind_label) if job.worker_lost else unexpected_error(task.kind_label)
    return _fail(task_id, error, cleanup=cleanup)


def _fail(task_id: str, error: str, *, cleanup: bool) -> str | None:
    ended = task_mark_failed(task_id, error=error)
    if cleanup:
        task_cleanup(task_id)
    if ended:
        logger.warning("Task %s ended by the safety net: %s", task_id, error)
        return "failed"
    return None


def tasks_reconcile() -> dict[str, int]:
    """One pass over every unfinished task and every ended one awaiting cleanup; counts what was done."""
    done: dict[str, int] = {}
    for task in Task.objects.needing_attention().order_by("created_at"):
        outcome = task_reconcile(task)  # a queue error ends the pass: the scheduler retries it
        if outcome:
            done[outcome] = done.get(outcome, 0) + 1
    return done

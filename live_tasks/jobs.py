"""The core's job: the one function that runs a task of any kind, on either queue, and RQ's stop callback.

They take ids, load rows, call the kind's `run`, and own the failure handling: every way out
ends the task in an honest final state and cleans up after it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils import translation

from . import stats
from .cleanup import task_cleanup
from .errors import TaskInputInvalid, kind_unavailable_error, user_error_for
from .files import result_delete, work_files_delete
from .kinds import UnknownTaskKind
from .reporter import ProgressReporter, TaskNoLongerRunning
from .state import task_mark_cancelled, task_mark_failed, task_mark_running, task_mark_succeeded

logger = logging.getLogger(__name__)


def task_run_job(task_id: str, language: str = "", *, on_running: Callable[[], None] | None = None) -> str:
    """`language`: the task's (Task.language), for what the job and its kind write. `on_running` is
    called once the task is marked running, before its work (Celery's job starts its heartbeat).

    Returns what became of it: "succeeded", "failed", "stopped", or "skipped" (not queued any more).
    """
    try:
        with translation.override(language or settings.LANGUAGE_CODE):
            return _task_run(task_id, on_running)
    finally:
        # A work horse ends with os._exit, without atexit: write its metrics before (never raises).
        stats.flush()


def _task_run(task_id: str, on_running: Callable[[], None] | None) -> str:
    task = task_mark_running(task_id)
    if task is None:
        logger.info("Task %s is no longer queued (cancelled, gone, or run already); skipping", task_id)
        return "skipped"
    if on_running is not None:
        on_running()
    try:
        kind = task.kind_spec
    except UnknownTaskKind:
        logger.error("Task %s has kind %r, which no installed app registers", task_id, task.kind)
        task_mark_failed(task_id, error=kind_unavailable_error())
        return "failed"

    try:
        result = kind.run(task, ProgressReporter(task.id))
    except TaskNoLongerRunning:
        logger.info("Task %s was ended while running (cancelled?); stopped", task_id)
        task_cleanup(task_id)
        return "stopped"
    except TaskInputInvalid as exc:
        logger.info("Task %s refused its input: %s", task_id, exc.user_message)
        task_mark_failed(task_id, error=exc.user_message)
        task_cleanup(task_id)
        return "failed"
    except BaseException as exc:
        logger.exception("Task %s (%s) failed", task_id, kind.name)
        task_mark_failed(task_id, error=user_error_for(exc, kind))
        task_cleanup(task_id)
        raise  # the queue records the job as failed for operators (RQ's failed registry, Celery's log)

    finished = task_mark_succeeded(task_id, detail=result.detail, file_name=result.file, commit=result.commit)
    if finished is None:  # cancelled or failed meanwhile: nothing of it may outlive it
        result_delete(result.file)
        task_cleanup(task_id)
        return "stopped"
    work_files_delete(task_id)
    return "succeeded"


def task_job_stopped(job: Any, connection: Any) -> None:
    """RQ's on_stopped callback, run by the worker after a stop-job command killed the work horse."""
    with translation.override(job.kwargs.get("language") or settings.LANGUAGE_CODE):
        task_mark_cancelled(job.id)  # already so after a user's cancel; not after a stop from the dashboard
    task_cleanup(job.id)

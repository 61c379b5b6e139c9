"""After a failure or a cancel: remove what the task's job left behind, at least once.

A failed or cancelled task is marked `needs_cleanup` in the same UPDATE that ends it. Whoever
knows that no job is writing for it any more (the job itself as it stops, the worker once the work
horse is dead, the cancel of a job that never started, the safety net) calls task_cleanup; the
flag is cleared only when the cleanup returned, so one that was interrupted is tried again by the
safety net's next pass.
"""

from __future__ import annotations

import logging

from .files import results_delete, work_files_delete
from .kinds import UnknownTaskKind
from .models import Task
from .types import TaskId

logger = logging.getLogger(__name__)


def task_cleanup(task_id: TaskId) -> bool:
    """Delete the task's work files, and for an unsuccessful task its results and the kind's partial output."""
    task = Task.objects.filter(pk=task_id).first()
    try:
        work_files_delete(task_id)
        if task is None:
            return True
        if not task.is_finished:
            return False  # a job may still be writing; never pull the floor from under it
        if task.status != Task.Status.SUCCEEDED:
            results_delete(task.id)
            try:
                cleanup = task.kind_spec.cleanup
            except UnknownTaskKind:
                cleanup = None
            if cleanup is not None:
                cleanup(task)
    except Exception:
        logger.exception("Cleanup of task %s failed; the safety net will try again", task_id)
        return False
    Task.objects.filter(pk=task_id).update(needs_cleanup=False)
    return True

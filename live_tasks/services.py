"""Task use cases for any kind: launch, cancel, delete, and expire old results.

Launching records the row first (its UUID is also the job id) and enqueues only once the
transaction has committed, so a worker can never look for a row that does not exist yet.
"""

from __future__ import annotations

import contextlib
import logging
from contextlib import nullcontext
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import get_language, gettext
from redis.exceptions import RedisError

from live_tasks.push.publish import publish_task_deleted

from .cleanup import task_cleanup
from .conf import live_settings
from .errors import TaskError
from .files import input_store, is_storage_fault, result_delete, results_delete, work_files_delete
from .kinds import get_kind
from .limits import task_launch_count, task_quota_check
from .models import Task, TaskQuerySet
from .queue import QUEUE_ERRORS, task_job_enqueue, task_job_stop, task_jobs_delete
from .reconcile import task_reconcile
from .signals import task_enqueued, task_signal_send
from .state import task_announce, task_mark_cancelled, task_mark_expired

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, User

logger = logging.getLogger(__name__)


class TaskAlreadyRunning(TaskError):
    """The user has an unfinished task of this kind: `task` is it."""

    status = 409
    task: Task

    def __init__(self, task: Task) -> None:
        message = gettext("You already have a %(label)s in progress.") % {"label": task.kind_label.lower()}
        super().__init__(message, task=task)

    @property
    def notice(self) -> str:
        # Read on that task's page, not the one launched from.
        return gettext("%(message)s Here it is.") % {"message": self.message}


class TaskAlreadyFinished(TaskError):
    status = 409
    task: Task

    def __init__(self, task: Task) -> None:
        messages = {
            "succeeded": gettext("This %(label)s has already finished."),
            "failed": gettext("This %(label)s has already failed."),
            "cancelled": gettext("This %(label)s was already cancelled."),
        }
        message = messages.get(task.status, gettext("This %(label)s has already ended."))
        super().__init__(message % {"label": task.kind_label.lower()}, task=task)


class TaskNotDeletable(TaskError):
    """The task is still running, or its cleanup is still owed: deleting it now would orphan files."""

    status = 409
    task: Task

    def __init__(self, task: Task) -> None:
        if task.is_finished:
            message = gettext("This %(label)s is still being cleaned up. Try again in a moment.")
        else:
            message = gettext("This %(label)s is still in progress: cancel it first.")
        super().__init__(message % {"label": task.kind_label.lower()}, task=task)


class QueueUnavailable(TaskError):
    """Redis (the job queue) cannot be reached; nothing was left behind."""

    status = 503

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or gettext("The background service is unavailable. Please try again in a minute."))


class StorageUnavailable(TaskError):
    """The task's input could not be stored (the disk or the bucket refused); nothing was left behind."""

    status = 503

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or gettext("The file could not be stored. Please try again in a minute."))


def task_start(
    *,
    user: User | None,
    kind: str,
    params: dict[str, Any] | None = None,
    input_file: Path | None = None,
    limited: bool = True,
) -> Task:
    """Record a queued task of `kind` and enqueue its job once the row is committed.

    A user's launches are limited first (live_tasks/limits.py): TaskLaunchLimited past the rate,
    TaskQuotaExceeded when their stored results would pass the quota. `limited=False` is for
    staff acting for a user (the admin's Retry), never for a user's own request. `user=None`: a
    task without an owner (a `@task` enqueued outside live_tasks.for_user), seen by staff only and
    never limited.

    `input_file`, if given, becomes the task's input (live_tasks.files.input_store: moved into the
    work directory, or sent to the bucket): it is the task's from then on and is deleted when the
    task ends; StorageUnavailable if it cannot be stored, with the row removed again. Raises TaskAlreadyRunning if
    the user has an unfinished task of this kind (the database's unique constraint decides, so
    two simultaneous launches cannot both succeed), and QueueUnavailable if the job cannot be
    enqueued, in which case the row and the input are removed again.
    """
    spec = get_kind(kind)  # an unknown kind is a programming error: UnknownTaskKind
    if limited and user is not None:
        try:
            task_launch_count(user)
        except RedisError as exc:
            raise QueueUnavailable() from exc  # the enqueue could not work either
        task_quota_check(user, spec.name)
    try:
        return _task_create(user, spec.name, params or {}, input_file)
    except TaskAlreadyRunning as exc:
        # The blocking task may belong to a worker that died: check it now rather than make the
        # user wait for the scheduler's next pass, and launch if it was ended. Only ended: its
        # cleanup (an import's staged posts, perhaps a million) is the scheduler's, not this request's.
        try:
            ended = task_reconcile(exc.task, cleanup=False) in ("failed", "cancelled")
        except QUEUE_ERRORS:
            ended = False
        if not ended:
            raise
        return _task_create(user, spec.name, params or {}, input_file)


def _task_create(user: User | None, kind: str, params: dict[str, Any], input_file: Path | None) -> Task:
    # Inside a caller's transaction, a savepoint keeps a refused insert from spoiling it; on its own
    # (a view, in autocommit), the insert is one statement: no BEGIN and COMMIT round trips.
    guard = transaction.atomic() if transaction.get_connection().in_atomic_block else nullcontext()
    try:
        with guard:
            task = Task.objects.create(user=user, kind=kind, params=params, language=get_language() or "")
    except IntegrityError:
        if user is None:  # the constraint is per owner: no task without one can clash
            raise
        existing = Task.objects.for_user(user).unfinished().of_kind(kind).first()
        if existing is None:  # it finished between our insert and this read: a retry will pass
            raise
        raise TaskAlreadyRunning(existing) from None
    if input_file is not None:
        try:
            input_store(task.id, input_file)
        except Exception as exc:
            Task.objects.filter(pk=task.pk).delete()
            if not is_storage_fault(exc):
                raise
            logger.error("Could not store the input of task %s: %r", task.id, exc)
            raise StorageUnavailable() from exc
    # robust=False: a failed enqueue must reach the caller, who answers 503.
    transaction.on_commit(partial(_enqueue_or_withdraw, task), robust=False)
    return task


def _enqueue_or_withdraw(task: Task) -> None:
    task_announce(task)  # before the job exists: see task_announce
    try:
        task_job_enqueue(str(task.id), kind=task.kind_spec, language=task.language)
    except QUEUE_ERRORS as exc:
        Task.objects.filter(pk=task.pk).delete()
        work_files_delete(task.id)
        logger.error("Could not enqueue task %s: %r", task.id, exc)
        raise QueueUnavailable() from exc
    task_signal_send(task_enqueued, task)  # on commit already (_task_create), and only for a launch that stands


def task_cancel(*, task: Task) -> Task:
    """Cancel a queued or running task: the row first (it is the truth), then the job."""
    with task.launch_language():
        cancelled = task_mark_cancelled(task.id, detail=str(task.kind_spec.cancelled_detail))
    if cancelled is None:
        task.refresh_from_db()
        raise TaskAlreadyFinished(task)
    if not task_job_stop(str(task.id)):
        task_cleanup(task.id)  # no work horse is writing for it: clean up now
    return cancelled


def task_delete(*, task: Task) -> None:
    """Delete a finished task and its result file; every open page drops it (a `task_deleted`
    message). Raises TaskNotDeletable for an unfinished task: its job may still be writing."""
    if not _tasks_delete(Task.objects.filter(pk=task.pk)):
        task.refresh_from_db()
        raise TaskNotDeletable(task)


def tasks_delete_finished(*, user: AbstractBaseUser, kind: str | None = None) -> int:
    """Delete the user's finished tasks (of one kind) and their files; returns how many."""
    tasks = Task.objects.for_user(user)
    return _tasks_delete(tasks.of_kind(kind) if kind else tasks)


def _tasks_delete(tasks: TaskQuerySet) -> int:
    # Only finished tasks whose cleanup is done: no job writes for them and nothing of theirs is
    # owed to the safety net, which finds its work through these very rows.
    deletable = tasks.finished().filter(needs_cleanup=False)
    with transaction.atomic():
        gone = list(deletable.values_list("id", "user_id", "file"))
        Task.objects.filter(pk__in=[task_id for task_id, _, _ in gone]).delete()
    # Files and pages only once the rows are gone for good: a rolled-back delete keeps its files.
    transaction.on_commit(partial(_results_delete, gone))
    return len(gone)


def tasks_delete_for_user(*, user: AbstractBaseUser) -> None:
    """Before a user is deleted: cancel their unfinished tasks, and once the deletion commits,
    delete every task's files and tell open pages. The rows go with the user (on_delete=CASCADE)."""
    for task in Task.objects.for_user(user).unfinished():
        with contextlib.suppress(TaskAlreadyFinished):  # it ended meanwhile: nothing to stop
            task_cancel(task=task)
    gone = list(Task.objects.for_user(user).values_list("id", "user_id", "file"))
    transaction.on_commit(partial(_results_delete, gone))


def _results_delete(gone: list[tuple[Any, int, str]]) -> None:
    for task_id, user_id, file_name in gone:
        try:
            result_delete(file_name)
            results_delete(task_id)
            work_files_delete(task_id)
        except OSError:
            logger.exception("Could not delete the files of deleted task %s", task_id)
        publish_task_deleted(user_id=user_id, task_id=str(task_id))


def tasks_expire() -> int:
    """Delete result files past the retention period; their tasks say they expired."""
    before = timezone.now() - timedelta(days=live_settings.RESULT_RETENTION_DAYS)
    expired = 0
    for task in Task.objects.expirable(before=before):
        name = task.file.name
        with task.launch_language():
            marked = task_mark_expired(task.id)
        if marked:
            result_delete(name)
            expired += 1
    return expired


PRUNE_BATCH = 500


def tasks_delete_old() -> int:
    """Delete finished tasks older than LIVE_TASKS["ROW_RETENTION_DAYS"], their files and their job records.

    In batches, so that a large backlog neither holds a long transaction nor one huge Redis call.
    The job records go first: a task whose records could not be deleted (the queue away) is kept for
    the next pass. Returns how many rows were deleted.
    """
    before = timezone.now() - timedelta(days=live_settings.ROW_RETENTION_DAYS)
    pruned = 0
    while batch := list(
        Task.objects.prunable(before=before).order_by("finished_at").values_list("id", "file")[:PRUNE_BATCH]
    ):
        ids = [str(task_id) for task_id, _ in batch]
        task_jobs_delete(ids)
        for task_id, name in batch:
            result_delete(name)
            results_delete(task_id)
        pruned += Task.objects.filter(pk__in=ids).delete()[0]
    return pruned

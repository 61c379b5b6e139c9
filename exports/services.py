"""Export use cases: launch, cancel and expire from the site; produce inside the worker."""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from redis.exceptions import RedisError
from rq.timeouts import JobTimeoutException
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from . import files
from .emails import export_email_send
from .errors import EMAIL_FAILED, STORAGE_FAILED, ExportStepFailed, is_transient
from .models import Task
from .queue import export_job_enqueue, export_job_stop
from .reconcile import task_reconcile
from .task_state import (
    ProgressReporter,
    task_announce,
    task_mark_cancelled,
    task_mark_expired,
    task_mark_succeeded,
    task_set_detail,
)
from .writer import write_posts_json

logger = logging.getLogger(__name__)


class ExportAlreadyRunning(Exception):
    def __init__(self, task: Task) -> None:
        super().__init__(f"An export is already {task.status}.")
        self.task = task


class TaskAlreadyFinished(Exception):
    def __init__(self, task: Task) -> None:
        super().__init__(f"This export has already {task.status}.")
        self.task = task


class QueueUnavailable(Exception):
    """Redis (the job queue) cannot be reached; nothing was left behind."""


QUEUE_UNAVAILABLE = "The background service is unavailable. Please try again in a minute."


def export_start(*, user) -> Task:
    """Record a queued export task and enqueue its job once the row is committed.

    Raises ExportAlreadyRunning if the user has an unfinished export (the database's unique
    constraint decides, so two simultaneous launches cannot both succeed), and QueueUnavailable
    if the job cannot be enqueued, in which case the task row is removed again.
    """
    try:
        return _export_create(user)
    except ExportAlreadyRunning as exc:
        # The blocking task may belong to a worker that died: check it now rather than make the
        # user wait for the scheduler's next pass, and launch if it was ended.
        try:
            ended = task_reconcile(exc.task) in ("failed", "cancelled")
        except RedisError:
            ended = False
        if not ended:
            raise
        return _export_create(user)


def _export_create(user) -> Task:
    try:
        with transaction.atomic():
            task = Task.objects.create(user=user, kind=Task.Kind.EXPORT_POSTS)
    except IntegrityError:
        existing = Task.objects.for_user(user).unfinished().filter(kind=Task.Kind.EXPORT_POSTS).first()
        if existing is None:  # it finished between our insert and this read: a retry will pass
            raise
        raise ExportAlreadyRunning(existing) from None
    # robust=False: a failed enqueue must reach the caller, who answers 503.
    transaction.on_commit(partial(_enqueue_or_withdraw, task), robust=False)
    return task


def _enqueue_or_withdraw(task: Task) -> None:
    task_announce(task)  # before the job exists: see task_announce
    try:
        export_job_enqueue(str(task.id))
    except RedisError as exc:
        Task.objects.filter(pk=task.pk).delete()
        logger.error("Could not enqueue export %s: %r", task.id, exc)
        raise QueueUnavailable(QUEUE_UNAVAILABLE) from exc


def export_cancel(*, task: Task) -> Task:
    """Cancel a queued or running export: the row first (it is the truth), then the job."""
    cancelled = task_mark_cancelled(task.id, detail="Cancelled. Nothing was emailed.")
    if cancelled is None:
        task.refresh_from_db()
        raise TaskAlreadyFinished(task)
    export_job_stop(str(task.id))
    files.partial_discard(task.id)
    return cancelled


def export_produce(*, task: Task) -> Task | None:
    """Inside the worker: write the file, store it, email it, mark the task succeeded."""
    report = ProgressReporter(task.id, noun="posts")
    path = files.work_path(task.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "wb") as out:
            count = write_posts_json(
                author=task.user, out=out, chunk_size=settings.EXPORT_CHUNK_SIZE, on_progress=report
            )
        stored_name = _with_retries(
            task, "storing the file", STORAGE_FAILED, lambda: files.store_finished(task.id, user_id=task.user_id)
        )
    finally:
        files.partial_discard(task.id)

    try:
        task_set_detail(task.id, f"Emailing {count:,} posts…")
        task.file.name = stored_name
        emailed = _with_retries(
            task, "sending the email", EMAIL_FAILED, lambda: export_email_send(task=task, post_count=count)
        )
    except BaseException:
        files.stored_delete(stored_name)  # no orphan file behind a failed task
        raise
    detail = f"{count:,} posts exported" + ("" if emailed else " (no email address on file)")
    finished = task_mark_succeeded(task.id, detail=detail, file_name=stored_name)
    if finished is None:  # cancelled or failed meanwhile: its file must not outlive it
        files.stored_delete(stored_name)
    return finished


def _with_retries(task: Task, step: str, failure_message: str, action):
    """Run one step, retrying transient faults with exponential backoff; the user sees it."""
    attempts = settings.EXPORT_RETRY_ATTEMPTS

    def say_retrying(state) -> None:
        logger.warning("Export %s: %s failed (%r); retrying", task.id, step, state.outcome.exception())
        task_set_detail(
            task.id,
            f"Retrying {step} in {state.next_action.sleep:.0f} s (attempt {state.attempt_number + 1} of {attempts})…",
        )

    try:
        for attempt in Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=settings.EXPORT_RETRY_BACKOFF, max=60),
            retry=retry_if_exception(is_transient),
            before_sleep=say_retrying,
            reraise=True,
        ):
            with attempt:
                return action()
    except JobTimeoutException:
        raise  # the job's own time limit, not this step's fault: reported as "timed out"
    except Exception as exc:
        raise ExportStepFailed(failure_message) from exc


def exports_expire() -> int:
    """Delete export files past the retention period; their tasks say they expired."""
    before = timezone.now() - timedelta(days=settings.EXPORT_RETENTION_DAYS)
    expired = 0
    for task in Task.objects.expirable(before=before):
        name = task.file.name
        if task_mark_expired(task.id):
            files.stored_delete(name)
            expired += 1
    return expired

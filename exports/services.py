"""Export use cases: launching one from a request, and producing it inside the worker."""

from __future__ import annotations

import logging
from functools import partial

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.db import IntegrityError, transaction
from redis.exceptions import RedisError

from .emails import export_email_send
from .models import Task
from .queue import default_queue
from .task_state import ProgressReporter, task_mark_succeeded, task_set_detail
from .writer import write_posts_json

logger = logging.getLogger(__name__)


class ExportAlreadyRunning(Exception):
    def __init__(self, task: Task) -> None:
        super().__init__(f"An export is already {task.status}.")
        self.task = task


class QueueUnavailable(Exception):
    """Redis (the job queue) cannot be reached; nothing was left behind."""


def export_start(*, user) -> Task:
    """Record a queued export task and enqueue its job once the row is committed.

    Raises ExportAlreadyRunning if the user has an unfinished export (the database's unique
    constraint decides, so two simultaneous launches cannot both succeed), and QueueUnavailable
    if the job cannot be enqueued, in which case the task row is removed again.
    """
    try:
        with transaction.atomic():
            task = Task.objects.create(user=user, kind=Task.Kind.EXPORT_POSTS)
    except IntegrityError:
        existing = Task.objects.for_user(user).unfinished().filter(kind=Task.Kind.EXPORT_POSTS).first()
        if existing is None:  # it finished between our insert and this read: a retry will pass
            raise
        raise ExportAlreadyRunning(existing) from None
    # robust=False: a failed enqueue must reach the caller, who answers 503.
    transaction.on_commit(partial(_enqueue_export, task), robust=False)
    return task


def _enqueue_export(task: Task) -> None:
    from .jobs import export_posts_job  # jobs import this module

    try:
        # The task id is the job id: the queue never invents an id we would have to store.
        default_queue().enqueue(export_posts_job, str(task.id), job_id=str(task.id))
    except RedisError as exc:
        Task.objects.filter(pk=task.pk).delete()
        logger.error("Could not enqueue export %s: %r", task.id, exc)
        raise QueueUnavailable("The background service is unavailable. Please try again in a minute.") from exc


def export_produce(*, task: Task) -> Task | None:
    """Inside the worker: write the file, store it, email it, mark the task succeeded."""
    report = ProgressReporter(task.id, noun="posts")
    with TemporaryUploadedFile("posts.json", "application/json", None, "utf-8") as tmp:
        # A file on local disk with temporary_file_path(): FileSystemStorage moves it into
        # place instead of copying, and any other storage backend streams it from disk.
        count = write_posts_json(author=task.user, out=tmp, chunk_size=settings.EXPORT_CHUNK_SIZE, on_progress=report)
        tmp.size = tmp.tell()
        tmp.seek(0)
        stored_name = default_storage.save(f"exports/{task.user_id}/{task.id}.json", tmp)

    try:
        task_set_detail(task.id, f"Emailing {count:,} posts…")
        task.file.name = stored_name
        emailed = export_email_send(task=task, post_count=count)
    except BaseException:
        default_storage.delete(stored_name)  # no orphan file behind a failed task
        raise
    detail = f"{count:,} posts exported" + ("" if emailed else " (no email address on file)")
    finished = task_mark_succeeded(task.id, detail=detail, file_name=stored_name)
    if finished is None:  # cancelled or failed meanwhile: its file must not outlive it
        default_storage.delete(stored_name)
    return finished

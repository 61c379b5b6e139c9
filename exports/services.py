"""Export use cases: launch from the site; produce the file inside the worker."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings

from live_tasks import ProgressReporter, Task, TaskResult, task_start, with_retries
from live_tasks.files import result_writer

from .emails import email_fault_is_transient, export_email_send
from .writer import write_posts_json

if TYPE_CHECKING:
    from django.contrib.auth.models import User

EXPORT_POSTS = "export_posts"
EMAIL_FAILED = "The export was written but the email could not be sent."
STORAGE_FAILED = "The export file could not be stored."


def export_file_name(task: Task) -> str:
    """posts-<username>-<date>.json: what the file is, whose, and from when."""
    return f"posts-{task.owner.get_username()}-{task.created_at:%Y-%m-%d}.json"


def export_start(*, user: User) -> Task:
    """Launch an export of the user's posts (live_tasks.services.task_start: one unfinished at a time)."""
    return task_start(user=user, kind=EXPORT_POSTS)


def export_run(task: Task, progress: ProgressReporter) -> TaskResult:
    """Inside the worker: write the file into storage, email it. The core marks the task succeeded."""

    def write() -> tuple[str, int]:
        # Into a bucket the file is stored as it is written: a fault of storage starts it again.
        with result_writer(task.id, name=export_file_name(task)) as out:
            count = write_posts_json(
                author=task.owner,
                out=out,
                chunk_size=settings.EXPORT_CHUNK_SIZE,
                on_progress=lambda done, total: progress(done, total, detail=f"{done:,} of {total:,} posts"),
            )
        return out.stored_name, count

    stored_name, count = with_retries(progress, "storing the file", STORAGE_FAILED, write)
    progress.say(f"Emailing {count:,} posts…")  # at once: a slow mail server keeps the task here
    emailed = with_retries(
        progress,
        "sending the email",
        EMAIL_FAILED,
        lambda: export_email_send(
            task=task, stored_name=stored_name, post_count=count, file_name=export_file_name(task)
        ),
        transient=email_fault_is_transient,
    )
    detail = f"{count:,} posts exported" + ("" if emailed else " (no email address on file)")
    return TaskResult(detail=detail, file=stored_name)

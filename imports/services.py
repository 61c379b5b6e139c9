"""Import use cases: launch from an uploaded file; inside the worker, add its posts all or nothing."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import partial
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from django.conf import settings

from live_tasks import ProgressReporter, Task, TaskInputInvalid, TaskNoLongerRunning, TaskResult, task_start
from live_tasks.files import input_open
from posts.services import (
    BatchNotPending,
    NewPosts,
    posts_batch_delete,
    posts_batch_open,
    posts_batch_reveal,
    posts_prepare,
    posts_stage,
)

from .read_ahead import read_ahead
from .reader import ImportFileError, PostReader

if TYPE_CHECKING:
    from django.contrib.auth.models import User

IMPORT_POSTS = "import_posts"
FILE_NAME_MAX_LENGTH = 200
# Parsed and fingerprinted in a thread while the database writes the batch before: one in the
# writer's hands, these many waiting. The parse is Python and the INSERT a wait on the server, so
# the two overlap (docs/performance.md).
READ_AHEAD_BATCHES = 2

T = TypeVar("T")


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """itertools.batched, which arrives with Python 3.12."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _prepared_batches(reader: PostReader) -> Iterator[tuple[int, NewPosts, int]]:
    """The file's posts a batch at a time, fingerprinted: (posts read, the batch, upload bytes read)."""
    for batch in _batched(reader, settings.IMPORT_BATCH_SIZE):
        yield len(batch), posts_prepare((post.body, post.created_at) for post in batch), reader.bytes_read


def import_start(*, user: User, upload: Path, file_name: str) -> Task:
    """Launch an import of the uploaded file, which from now on belongs to the task (and is
    deleted when it ends, whatever the outcome). One unfinished import per user."""
    params = {"file_name": file_name[:FILE_NAME_MAX_LENGTH]}
    return task_start(user=user, kind=IMPORT_POSTS, params=params, input_file=upload)


def import_run(task: Task, progress: ProgressReporter) -> TaskResult:
    """Inside the worker: read the file as a stream and stage its posts in short transactions.

    The staged posts stay invisible; the core reveals them in the same transaction that marks the
    task succeeded (TaskResult.commit), or the kind's cleanup discards them.
    """
    upload, total_bytes = input_open(task.id)  # from the local disk or the bucket, as a stream
    posts_batch_open(author=task.owner, batch_id=task.id)
    imported = read = 0
    with upload:
        reader = PostReader(upload, max_decompressed_bytes=settings.IMPORT_MAX_DECOMPRESSED_BYTES)
        try:
            with read_ahead(_prepared_batches(reader), depth=READ_AHEAD_BATCHES) as batches:
                for count, new_posts, bytes_read in batches:
                    read += count
                    imported += posts_stage(author=task.owner, batch_id=task.id, posts=new_posts)
                    progress(bytes_read, total_bytes, detail=f"Imported {imported:,} posts so far")
        except ImportFileError as exc:
            raise TaskInputInvalid(f"{exc} Nothing was imported.") from None
        except BatchNotPending:
            # Only the task's cleanup discards its batch, and only once the task has ended (failed
            # by the safety net, cancelled): this job outlived its task, and stops as it would on
            # its next progress report. Nothing it staged was ever visible.
            raise TaskNoLongerRunning(task.id) from None
    skipped = read - imported
    detail = f"Imported {imported:,} post{'s' if imported != 1 else ''}"
    detail += f"; skipped {skipped:,} already present." if skipped else "."
    return TaskResult(detail=detail, commit=partial(posts_batch_reveal, batch_id=task.id))


def import_cleanup(task: Task) -> None:
    """After a failure or cancel: remove every post the import staged (they were never visible)."""
    posts_batch_delete(batch_id=task.id)

"""A task's files: its input (an upload), its output while being written, and its stored result.

Work files live in LIVE_TASKS["WORK_DIR"], named by task id so that cleanup never has to guess; that
directory is shared by the web processes and the workers, and is never served to anyone. An upload
is received there as `upload-<uuid>.part` before any task owns it; one that a killed web process
left behind is swept by the scheduler.
Results go through Django's storage API under `tasks/<task id>/`, one folder per task.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

from django.core.files import File
from django.core.files.storage import default_storage

from . import stats
from .conf import live_settings
from .types import TaskId


def work_dir() -> Path:
    path = Path(live_settings.work_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def work_path(task_id: TaskId) -> Path:
    """The output a job is writing, before it is stored."""
    return work_dir() / f"{task_id}.part"


def input_path(task_id: TaskId) -> Path:
    """The task's input file (an upload), kept only while the task is unfinished."""
    return work_dir() / f"{task_id}.input"


def upload_spool_path() -> Path:
    """A new file for an upload being received; the request that writes it renames or deletes it."""
    return work_dir() / f"upload-{uuid.uuid4()}.part"


# An upload spool is written from a body the server already holds whole (project/bodylimit.py), at
# disk speed, then renamed or deleted within the same request: one untouched for an hour belongs to
# no live request (its web process was killed), and nothing else ever opens it.
UPLOAD_SPOOL_MAX_AGE_SECONDS = 3600


def upload_spools_sweep(*, older_than_seconds: float = UPLOAD_SPOOL_MAX_AGE_SECONDS) -> int:
    """Delete upload spools left by a web process that died mid-upload; return how many."""
    cutoff = time.time() - older_than_seconds
    deleted = 0
    for path in work_dir().glob("upload-*.part"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                deleted += 1
        except FileNotFoundError:
            continue  # its request finished with it meanwhile
    return deleted


def work_files_delete(task_id: TaskId) -> None:
    """Delete the task's input and half-written output; called whenever a task ends."""
    for path in (work_path(task_id), input_path(task_id)):
        path.unlink(missing_ok=True)


# Generic in the type stubs only (no django_stubs_ext.monkeypatch() needed at run time).
if TYPE_CHECKING:
    _BytesFile = File[bytes]
else:
    _BytesFile = File


class _WorkFile(_BytesFile):
    # With temporary_file_path(), FileSystemStorage moves the file into place instead of
    # copying it; any other storage backend streams it from disk as usual.
    def temporary_file_path(self) -> str:
        assert self.file is not None  # made with an open handle
        return str(self.file.name)


def _result_folder(task_id: TaskId) -> str:
    return f"tasks/{task_id}"


@contextmanager
def storage_errors_counted(operation: str) -> Iterator[None]:
    """Count an error of the result storage (an object store's outage shows in the metrics), and let it go on."""
    try:
        yield
    except Exception:
        stats.count("live_tasks_storage_errors", operation=operation)
        raise


def result_store(task_id: TaskId, *, name: str) -> str:
    """Move the finished work file into storage as the task's result; return the stored name."""
    with open(work_path(task_id), "rb") as handle, storage_errors_counted("save"):
        return default_storage.save(f"{_result_folder(task_id)}/{name}", _WorkFile(handle))


def result_open(name: str) -> IO[bytes]:
    with storage_errors_counted("open"):
        return default_storage.open(name, "rb")


def result_size(name: str) -> int | None:
    """The stored result's size in bytes, or None if storage cannot tell."""
    try:
        with storage_errors_counted("size"):
            return default_storage.size(name)
    except OSError:
        return None


def result_delete(name: str) -> None:
    if name:
        with storage_errors_counted("delete"):
            default_storage.delete(name)


def results_delete(task_id: TaskId) -> None:
    """Delete whatever a task stored, for a task that did not succeed (its row names no file)."""
    folder = _result_folder(task_id)
    try:
        _, names = default_storage.listdir(folder)
    except FileNotFoundError:
        return  # it stored nothing: no error
    except Exception:
        stats.count("live_tasks_storage_errors", operation="list")
        raise
    for name in names:
        with storage_errors_counted("delete"):
            default_storage.delete(f"{folder}/{name}")

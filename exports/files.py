"""Where export files live while they are written, and how they move into storage."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage


def work_path(task_id) -> Path:
    """The in-progress file of a task: named by task id so that cleanup never has to guess."""
    return Path(settings.EXPORT_WORK_DIR) / f"{task_id}.json.part"


def partial_discard(task_id) -> None:
    """Delete what a stopped, killed or failed job left half-written."""
    work_path(task_id).unlink(missing_ok=True)


class _FinishedWorkFile(File):
    # With temporary_file_path(), FileSystemStorage moves the file into place instead of
    # copying it; any other storage backend streams it from disk as usual.
    def temporary_file_path(self) -> str:
        return self.file.name


def store_finished(task_id, *, user_id: int) -> str:
    """Move a finished work file into storage; return the stored name."""
    with open(work_path(task_id), "rb") as handle:
        return default_storage.save(f"exports/{user_id}/{task_id}.json", _FinishedWorkFile(handle))


def stored_delete(name: str) -> None:
    if name:
        default_storage.delete(name)

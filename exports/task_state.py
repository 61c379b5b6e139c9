"""Task state transitions: every change goes through here, bumps `seq`, and is pushed live.

Each transition is one conditional UPDATE, so a task that is already finished (cancelled by its
user, failed by the safety net) is never brought back to life by a late write from a job.
"""

from __future__ import annotations

import time
import uuid

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from notifications.publish import publish_task_update

from .models import Task
from .selectors import task_to_dict

# Errors are shown to users; keep them to a sentence.
ERROR_MAX_LENGTH = Task._meta.get_field("error").max_length


def _transition(
    task_id: uuid.UUID | str, *, allowed_from: tuple[str, ...], wait: bool = False, **changes
) -> Task | None:
    """Apply `changes` if the task is in one of `allowed_from`; publish and return it, else None.

    `wait` (final states) blocks until the channel layer has the message: see publish_task_update.
    """
    updated = Task.objects.filter(pk=task_id, status__in=allowed_from).update(seq=F("seq") + 1, **changes)
    if not updated:
        return None
    task = Task.objects.get(pk=task_id)
    publish_task_update(user_id=task.user_id, task=task_to_dict(task), wait=wait)
    return task


def task_announce(task: Task) -> None:
    """Push a new task's first state (seq 0) to the owner's other open pages.

    Called before the job is enqueued, so it is published before the worker (another process,
    which must first take the job and fork) can publish anything; `seq` covers the rest.
    """
    publish_task_update(user_id=task.user_id, task=task_to_dict(task), wait=False)


def task_mark_running(task_id: uuid.UUID | str, *, detail: str = "Starting…") -> Task | None:
    return _transition(
        task_id,
        allowed_from=(Task.Status.QUEUED,),
        status=Task.Status.RUNNING,
        started_at=timezone.now(),
        detail=detail,
    )


def task_set_detail(task_id: uuid.UUID | str, detail: str) -> Task | None:
    return _transition(task_id, allowed_from=Task.UNFINISHED, detail=detail)


def task_mark_succeeded(task_id: uuid.UUID | str, *, detail: str, file_name: str = "") -> Task | None:
    return _transition(
        task_id,
        allowed_from=(Task.Status.RUNNING,),
        wait=True,
        status=Task.Status.SUCCEEDED,
        progress=100,
        detail=detail,
        file=file_name,
        finished_at=timezone.now(),
    )


def task_mark_failed(task_id: uuid.UUID | str, *, error: str) -> Task | None:
    return _transition(
        task_id,
        allowed_from=Task.UNFINISHED,
        wait=True,
        status=Task.Status.FAILED,
        error=error[:ERROR_MAX_LENGTH],
        finished_at=timezone.now(),
    )


def task_mark_cancelled(task_id: uuid.UUID | str, *, detail: str = "Cancelled.") -> Task | None:
    return _transition(
        task_id,
        allowed_from=Task.UNFINISHED,
        wait=True,
        status=Task.Status.CANCELLED,
        detail=detail,
        finished_at=timezone.now(),
    )


def task_mark_expired(task_id: uuid.UUID | str) -> Task | None:
    return _transition(
        task_id,
        allowed_from=(Task.Status.SUCCEEDED,),
        wait=True,
        file="",
        expired_at=timezone.now(),
        detail="This export has expired; its file was deleted. Start a new export to get a fresh copy.",
    )


class TaskNoLongerRunning(Exception):
    """The task was ended elsewhere (cancelled, or failed by the safety net): stop working on it."""


class ProgressReporter:
    """Records a running task's progress, throttled: at most one write per interval, never per row.

    Progress only moves forward and stays below 100 until the task has succeeded. Raises
    TaskNoLongerRunning if the task was ended meanwhile.
    """

    def __init__(self, task_id: uuid.UUID | str, *, noun: str = "posts", interval: float | None = None) -> None:
        self.task_id = task_id
        self.noun = noun
        self.interval = settings.EXPORT_PROGRESS_INTERVAL if interval is None else interval
        self._last_write = float("-inf")
        self._last_percent = -1

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last_write < self.interval:
            return
        percent = min(99, done * 100 // total) if total else 0
        if percent <= self._last_percent:
            return
        self._last_write, self._last_percent = now, percent
        recorded = _transition(
            self.task_id,
            allowed_from=(Task.Status.RUNNING,),
            progress=percent,
            detail=f"{done:,} of {total:,} {self.noun}",
        )
        if recorded is None:
            # Normally RQ's stop-job command has killed us by now; this covers a lost command.
            raise TaskNoLongerRunning(self.task_id)

"""Task state transitions: every change goes through here, bumps `seq`, is pushed live, and sends
its signal (live_tasks/signals.py).

The rules are one table, TRANSITIONS: which statuses each transition may start from. Each
transition is one conditional UPDATE, so a task that is already finished (cancelled by its user,
failed by the safety net) is never brought back to life by a late write from a job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext

from live_tasks.push.publish import publish_task_update

from .files import result_size
from .models import Task
from .serializers import task_to_dict
from .signals import task_finished, task_progress, task_signal_on_commit, task_started
from .types import TaskId

Status = Task.Status

TRANSITIONS: dict[str, tuple[str, ...]] = {
    # Only from queued, and nothing leads back to queued: however often a task's job is run (the
    # safety net requeued it, RQ put it back, an orphaned horse still runs it), one run starts it.
    "start": (Status.QUEUED,),
    "progress": (Status.RUNNING,),
    "note": (Status.QUEUED, Status.RUNNING),  # a new detail line, status unchanged
    "succeed": (Status.RUNNING,),
    "fail": (Status.QUEUED, Status.RUNNING),
    "cancel": (Status.QUEUED, Status.RUNNING),
    "expire": (Status.SUCCEEDED,),  # the retention period deleted the result file
}

# The signal each transition sends once it has happened; a note and an expiry send none.
SIGNALS: dict[str, Signal] = {
    "start": task_started,
    "progress": task_progress,
    "succeed": task_finished,
    "fail": task_finished,
    "cancel": task_finished,
}

# Errors are shown to users; keep them to a sentence.
ERROR_MAX_LENGTH = Task._meta.get_field("error").max_length or 500
DETAIL_MAX_LENGTH = Task._meta.get_field("detail").max_length or 200


def _update(task_id: TaskId, transition: str, **changes: Any) -> bool:
    if "detail" in changes:
        changes["detail"] = changes["detail"][:DETAIL_MAX_LENGTH]
    allowed_from = TRANSITIONS[transition]
    return bool(Task.objects.filter(pk=task_id, status__in=allowed_from).update(seq=F("seq") + 1, **changes))


def _publish_and_signal(task_id: TaskId, transition: str, *, wait: bool) -> Task:
    """After a transition's UPDATE: push the row as it now is, then send the transition's signal.

    `wait` (final states) blocks until the channel layer has the push. The signal comes second so
    that a slow receiver never delays the live page, and on commit (task_signal_on_commit).
    """
    task = Task.objects.select_related("user").get(pk=task_id)
    publish_task_update(user_id=task.user_id, task=task_to_dict(task), wait=wait)
    signal = SIGNALS.get(transition)
    if signal is task_finished:
        task_signal_on_commit(signal, task, status=task.status)
    elif signal is not None:
        task_signal_on_commit(signal, task)
    return task


def _transition(task_id: TaskId, transition: str, *, wait: bool = False, **changes: Any) -> Task | None:
    """Apply `changes` if the table allows `transition` from the task's status; publish, signal and return it."""
    if not _update(task_id, transition, **changes):
        return None
    return _publish_and_signal(task_id, transition, wait=wait)


def task_announce(task: Task) -> None:
    """Push a new task's first state (seq 0) to the owner's other open pages.

    Called before the job is enqueued, so it is published before the worker (another process,
    which must first take the job and fork) can publish anything; `seq` covers the rest.
    """
    publish_task_update(user_id=task.user_id, task=task_to_dict(task), wait=False)


def task_mark_running(task_id: TaskId, *, detail: str | None = None) -> Task | None:
    detail = gettext("Starting…") if detail is None else detail
    return _transition(task_id, "start", status=Status.RUNNING, started_at=timezone.now(), detail=detail)


def task_set_progress(task_id: TaskId, *, progress: int, detail: str) -> Task | None:
    return _transition(task_id, "progress", progress=progress, detail=detail)


def task_set_detail(task_id: TaskId, detail: str) -> Task | None:
    return _transition(task_id, "note", detail=detail)


def task_mark_succeeded(
    task_id: TaskId, *, detail: str, file_name: str = "", commit: Callable[[], Any] | None = None
) -> Task | None:
    """The final success, and `commit` (the job's one small revealing write) in the same transaction."""
    with transaction.atomic():
        changes = {"status": Status.SUCCEEDED, "progress": 100, "detail": detail, "finished_at": timezone.now()}
        size = result_size(file_name) if file_name else None
        updated = _update(task_id, "succeed", file=file_name, file_size=size, **changes)
        if updated and commit is not None:
            commit()
    return _publish_and_signal(task_id, "succeed", wait=True) if updated else None


def task_mark_failed(task_id: TaskId, *, error: str) -> Task | None:
    """The error replaces the detail: the last progress line ("Starting…", "Imported 120,000 posts
    so far", "Retrying…") would be false beside it, since a failed task keeps none of its work."""
    return _transition(
        task_id,
        "fail",
        wait=True,
        status=Status.FAILED,
        error=error[:ERROR_MAX_LENGTH],
        detail="",
        finished_at=timezone.now(),
        needs_cleanup=True,
    )


def task_mark_cancelled(task_id: TaskId, *, detail: str | None = None) -> Task | None:
    detail = gettext("Cancelled.") if detail is None else detail
    return _transition(
        task_id,
        "cancel",
        wait=True,
        status=Status.CANCELLED,
        detail=detail,
        finished_at=timezone.now(),
        needs_cleanup=True,
    )


def task_mark_expired(task_id: TaskId) -> Task | None:
    return _transition(
        task_id,
        "expire",
        wait=True,
        file="",
        file_size=None,
        expired_at=timezone.now(),
        detail=gettext("The file was deleted after the retention period. Start a new one to get a fresh copy."),
    )

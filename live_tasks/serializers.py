"""The Task JSON: the one shape shared by the API, the WebSocket and the pages (docs/protocol.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext

from .kinds import UnknownTaskKind
from .models import Task


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def task_url(task: Task) -> str:
    """The page of one task: its kind's own page, or the core's generic one."""
    try:
        return reverse(task.kind_spec.url_name, kwargs={"task_id": task.id})
    except (UnknownTaskKind, NoReverseMatch):
        return reverse("live_tasks:detail", kwargs={"task_id": task.id})


def task_status_display(task: Task) -> str:
    """The status in words; a success whose file the retention period deleted reads "Expired"."""
    if task.status == Task.Status.SUCCEEDED and task.expired_at is not None:
        return gettext("Expired")
    return str(task.get_status_display())  # the label is a lazy translation


def task_has_file(task: Task) -> bool:
    return task.status == Task.Status.SUCCEEDED and bool(task.file)


def task_to_dict(task: Task) -> dict[str, Any]:
    """The Task JSON of /api/tasks/<id>/ and of every WebSocket message (docs/protocol.md).

    It carries what a page needs to show a task of any kind without knowing the kind.
    """
    return {
        "id": str(task.id),
        "kind": task.kind,
        "label": task.label,
        "status": task.status,
        "status_display": task_status_display(task),
        "progress": task.progress,
        "seq": task.seq,
        "detail": task.detail,
        "error": task.error,
        "url": task_url(task),
        "cancel_url": None if task.is_finished else reverse("live_tasks:cancel", kwargs={"task_id": task.id}),
        "download_url": reverse("live_tasks:download", kwargs={"task_id": task.id}) if task_has_file(task) else None,
        "file_size": task.file_size if task_has_file(task) else None,
        "delete_url": reverse("live_tasks:delete", kwargs={"task_id": task.id}) if task.is_finished else None,
        "user": task.user.get_username() if task.user is not None else "",  # "": no owner (staff only)
        "created_at": _iso(task.created_at),
        "started_at": _iso(task.started_at),
        "finished_at": _iso(task.finished_at),
        "expired_at": _iso(task.expired_at),
    }

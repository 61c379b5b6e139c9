"""Reading tasks: the one JSON shape shared by the API and the WebSocket, and owner-scoped look-ups."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from django.urls import reverse

from .models import Task


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def task_to_dict(task: Task) -> dict[str, Any]:
    """The Task JSON of /api/tasks/<id>/ and of every WebSocket message (docs/protocol.md)."""
    has_file = task.status == Task.Status.SUCCEEDED and bool(task.file)
    return {
        "id": str(task.id),
        "kind": task.kind,
        "status": task.status,
        "progress": task.progress,
        "seq": task.seq,
        "detail": task.detail,
        "error": task.error,
        "download_url": reverse("exports:download", args=[task.id]) if has_file else None,
        "created_at": _iso(task.created_at),
        "started_at": _iso(task.started_at),
        "finished_at": _iso(task.finished_at),
    }


def task_get_for_user(*, user, task_id) -> Task:
    """Another user's task is a 404, never a 403: its existence is not disclosed."""
    return get_object_or_404(Task.objects.for_user(user), pk=task_id)


def task_list_for_user(*, user, limit: int = 100) -> list[Task]:
    return list(Task.objects.for_user(user)[:limit])


def task_snapshot_for(*, user, all_users: bool = False) -> list[dict[str, Any]]:
    """What a freshly connected socket is sent: unfinished tasks and those finished in the last hour."""
    tasks = Task.objects.recent_or_unfinished()
    if not all_users:
        tasks = tasks.for_user(user)
    return [task_to_dict(task) for task in tasks[:200]]

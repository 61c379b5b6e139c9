"""Reading tasks: the one JSON shape shared by the API, the WebSocket and the pages, and owner-scoped look-ups."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core.paginator import Page, Paginator
from django.shortcuts import get_object_or_404
from django.urls import NoReverseMatch, reverse

from .kinds import UnknownTaskKind
from .models import Task, TaskQuerySet
from .types import TaskId

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    AnyUser = AbstractBaseUser | AnonymousUser

SNAPSHOT_LIMIT = 200
# Tasks per page of a list (/tasks/, a kind's list, /api/tasks/?page=N).
TASKS_PER_PAGE = 50


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
        return "Expired"
    return task.get_status_display()


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
        "user": task.user.get_username(),
        "created_at": _iso(task.created_at),
        "started_at": _iso(task.started_at),
        "finished_at": _iso(task.finished_at),
        "expired_at": _iso(task.expired_at),
    }


def task_get_for_user(*, user: AnyUser, task_id: TaskId, kind: str | None = None) -> Task:
    """Another user's task (or a task of another kind on a kind's page) is a 404, never a 403."""
    tasks = Task.objects.for_user(user)
    if kind is not None:
        tasks = tasks.of_kind(kind)
    return get_object_or_404(tasks, pk=task_id)


def _tasks_of(user: AnyUser, kind: str | None) -> TaskQuerySet:
    tasks: TaskQuerySet = Task.objects.for_user(user).select_related("user")
    return tasks.of_kind(kind) if kind is not None else tasks


def task_list_for_user(*, user: AnyUser, kind: str | None = None, limit: int = 5) -> list[Task]:
    """The user's latest `limit` tasks (of a kind): the short lists beside other content."""
    return list(_tasks_of(user, kind)[:limit])


def task_page_for_user(
    *, user: AnyUser, kind: str | None = None, page: str | int | None = None, per_page: int = TASKS_PER_PAGE
) -> Page[Task]:
    """One page of the user's tasks (of a kind), newest first; a page number out of range or not
    a number gives the nearest page, as a person following an old link would want."""
    return Paginator(_tasks_of(user, kind), per_page).get_page(page)


def task_snapshot_for(*, user: AnyUser, all_users: bool = False) -> list[dict[str, Any]]:
    """What a freshly connected socket is sent: unfinished tasks and those finished in the last hour."""
    tasks = Task.objects.recent_or_unfinished().select_related("user")
    if not all_users:
        tasks = tasks.for_user(user)
    return [task_to_dict(task) for task in tasks[:SNAPSHOT_LIMIT]]

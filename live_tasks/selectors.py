"""Reading tasks: owner-scoped look-ups, lists and the socket's snapshot (the JSON shape: serializers.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.paginator import Page, Paginator
from django.shortcuts import get_object_or_404

from .models import Task, TaskQuerySet
from .serializers import task_to_dict
from .types import TaskId

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    AnyUser = AbstractBaseUser | AnonymousUser

SNAPSHOT_LIMIT = 200
# Tasks per page of a list (/tasks/, a kind's list, /api/tasks/?page=N).
TASKS_PER_PAGE = 50


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

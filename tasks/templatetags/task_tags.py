"""Template helpers of the core: the Task JSON of a row, for the one task markup."""

from __future__ import annotations

from typing import Any

from django import template

from ..models import Task
from ..selectors import task_list_for_user, task_to_dict

register = template.Library()


@register.filter
def task_json(task: Task) -> dict[str, Any]:
    return task_to_dict(task)


@register.inclusion_tag("tasks/_task_list.html", takes_context=True)
def task_list(
    context: template.Context, kind: str = "", empty: str = "No tasks yet.", limit: int = 5
) -> dict[str, Any]:
    """{% task_list kind="import_posts" %}: the signed-in user's latest tasks of a kind, live."""
    user = context["request"].user
    return {"tasks": task_list_for_user(user=user, kind=kind or None, limit=limit), "kind": kind, "empty": empty}

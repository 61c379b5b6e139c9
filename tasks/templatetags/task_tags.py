"""Template helpers of the core: the Task JSON of a row, for the one task markup."""

from __future__ import annotations

from typing import Any

from django import template

from ..models import Task
from ..selectors import task_to_dict

register = template.Library()


@register.filter
def task_json(task: Task) -> dict[str, Any]:
    return task_to_dict(task)

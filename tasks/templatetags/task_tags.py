"""Template helpers of the core: the Task JSON of a row, the one task list, and times.

Times are rendered once, in one format, as `<time datetime="...">2026-11-24 10:26:03 UTC</time>`:
the attribute is for machines, the UTC text for a page read without script; live.js rewrites the
text in the reader's own time zone and locale on every page (the admin included).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

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
    request = context["request"]
    tasks = task_list_for_user(user=request.user, kind=kind or None, limit=limit)
    return {"tasks": tasks, "kind": kind, "empty": empty, "request": request, "csrf_token": context.get("csrf_token")}


def _as_datetime(value: datetime | str | None) -> datetime | None:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return value


@register.filter
def utc_text(value: datetime | str | None) -> str:
    """'2026-11-24 10:26:03 UTC': the text of a <time> before live.js localizes it (and in emails)."""
    moment = _as_datetime(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


@register.filter
def utc_time(value: datetime | str | None) -> SafeString:
    """A whole <time> element, or an em dash for no time."""
    moment = _as_datetime(value)
    if moment is None:
        return format_html("{}", "—")
    return format_html('<time datetime="{}">{}</time>', moment.astimezone(UTC).isoformat(), utc_text(moment))

"""`{% load live_tasks %}`: what a site's own pages need to show tasks live, and the filters of times.

- `{% live_tasks_script %}` once per page, at the end of <body>: live.js, the blank task it clones,
  and the screen reader's announcer (`scope="all"`: every user's tasks, for staff);
- `{% live_tasks_strip %}`: the running-tasks strip that live.js fills on every page;
- `{% live_task task %}`: the one markup of a task (a Task row), with `cancel=True` and `delete=True`;
- `{% task_list kind="..." %}`: the signed-in user's latest tasks of a kind, kept live.

Times are rendered once, in one format, as `<time datetime="...">2026-11-24 10:26:03 UTC</time>`:
the attribute is for machines, the UTC text for a page read without script; live.js rewrites the
text in the reader's own time zone and locale on every page (the admin included).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext

from ..conf import live_settings
from ..models import Task
from ..selectors import task_list_for_user
from ..serializers import task_to_dict

register = template.Library()


@register.inclusion_tag("live_tasks/_live.html", takes_context=True)
def live_tasks_script(context: template.Context, scope: str = "", cancel: bool = True) -> dict[str, Any]:
    """live.js and what it needs; nothing for an anonymous visitor (the socket would refuse them)."""
    user = context.get("user") or getattr(context.get("request"), "user", None)
    return {
        "show": bool(user and user.is_authenticated),
        "ws_path": live_settings.WEBSOCKET_PATH,
        "scope": scope,
        "cancel": cancel,
    }


@register.inclusion_tag("live_tasks/_running_tasks.html", takes_context=True)
def live_tasks_strip(context: template.Context) -> dict[str, Any]:
    user = context.get("user") or getattr(context.get("request"), "user", None)
    return {"show": bool(user and user.is_authenticated)}


@register.inclusion_tag("live_tasks/_task.html", takes_context=True)
def live_task(context: template.Context, task: Task, cancel: bool = False, delete: bool = False) -> dict[str, Any]:
    return {
        "task_json": task_to_dict(task),
        "cancel": cancel,
        "delete": delete,
        "csrf_token": context.get("csrf_token"),
        "request": context.get("request"),
    }


@register.filter
def task_json(task: Task) -> dict[str, Any]:
    return task_to_dict(task)


@register.inclusion_tag("live_tasks/_task_list.html", takes_context=True)
def task_list(context: template.Context, kind: str = "", empty: str = "", limit: int = 5) -> dict[str, Any]:
    """{% task_list kind="import_posts" %}: the signed-in user's latest tasks of a kind, live."""
    request = context["request"]
    tasks = task_list_for_user(user=request.user, kind=kind or None, limit=limit)
    return {
        "tasks": tasks,
        "kind": kind,
        "empty": empty or gettext("No tasks yet."),
        "request": request,
        "csrf_token": context.get("csrf_token"),
    }


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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ms(moment: datetime) -> int:
    """Whole milliseconds since the epoch, truncated, as JavaScript's Date.parse reads an ISO time."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def elapsed_ms(started: datetime | str | None, finished: datetime | str | None = None) -> int | None:
    """From `started` to `finished` (or now) in milliseconds, as live.js computes it; None if not started."""
    start, end = _as_datetime(started), _as_datetime(finished)
    if start is None:
        return None
    return _ms(end or datetime.now(UTC)) - _ms(start)


def _round(value: float) -> int:
    return math.floor(value + 0.5)  # Math.round's rounding, so both sides agree on halves


def duration_text(ms: float) -> str:
    """'under 0.1 s', '0.2 s', '9.9 s', '42 s', '3 min 5 s': live.js's formatDuration, to the letter."""
    tenths = _round(max(0.0, ms) / 100)
    if tenths == 0:
        return gettext("under 0.1 s")
    if tenths < 100:
        return gettext("%(seconds)s s") % {"seconds": f"{tenths // 10}.{tenths % 10}"}
    seconds = _round(ms / 1000)
    if seconds < 60:
        return gettext("%(seconds)s s") % {"seconds": seconds}
    return gettext("%(minutes)s min %(seconds)s s") % {"minutes": seconds // 60, "seconds": seconds % 60}


@register.filter
def task_timing(task: dict[str, Any] | None) -> str:
    """The timing line of a task (its Task JSON): the text live.js's timingText writes, so a page
    reads the same before and after the script runs."""
    if not task:
        return ""
    elapsed = elapsed_ms(task["started_at"], task["finished_at"])
    if elapsed is None:
        return gettext("Waiting for a worker…") if task["status"] == Task.Status.QUEUED else ""
    finished = task["status"] not in Task.UNFINISHED
    text = (gettext("Took %(duration)s") if finished else gettext("Elapsed %(duration)s")) % {
        "duration": duration_text(elapsed)
    }
    progress = task["progress"]
    if task["status"] == Task.Status.RUNNING and 0 < progress < 100:
        left = _round(elapsed * (100 - progress) / progress)
        left_text = (
            gettext("under a second left")
            if left < 1000
            else gettext("about %(duration)s left") % {"duration": duration_text(left)}
        )
        text += " · " + left_text
    return text

"""What a launch must pass before a task is recorded, for every kind: the launch rate and the quota.

- At most LIVE_TASKS["LAUNCH_LIMIT"] launches per user in each LIVE_TASKS["LAUNCH_WINDOW_SECONDS"] (every attempt
  counts, refused ones included), counted in Redis so that every web process shares the count.
- Stored result files (an export's JSON) of one user stay under LIVE_TASKS["RESULT_QUOTA_BYTES"]: a
  launch is refused when what the user stores now plus the size of their largest stored result of
  the same kind (a safe guess of what this one will store) would pass it. With one unfinished task
  per user and kind, a user can pass the quota by at most one result, and only on a first run.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.db.models import Max, Q, Sum
from django.template.defaultfilters import filesizeformat
from django.utils.formats import date_format
from django.utils.translation import gettext, ngettext

from live_tasks.ratelimits import Limit

from .conf import live_settings
from .errors import TaskError
from .models import Task

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


class TaskLaunchLimited(TaskError):
    """Too many launches in the window; `retry_after` seconds until the next one is allowed."""

    status = 429


class TaskQuotaExceeded(TaskError):
    """The user's stored results would pass their quota; the message says what to do."""

    status = 409


def launch_limit() -> Limit:
    return Limit("task-launch", live_settings.LAUNCH_LIMIT, live_settings.LAUNCH_WINDOW_SECONDS)


def task_launch_count(user: AbstractBaseUser) -> None:
    """Count a launch; raise TaskLaunchLimited past the limit (RedisError if Redis is away)."""
    retry_after = launch_limit().hit(user.pk)
    if retry_after is not None:
        raise TaskLaunchLimited(
            gettext("You started too many tasks in a short time. Please wait %(seconds)s s and try again.")
            % {"seconds": retry_after},
            retry_after=retry_after,
        )


def task_quota_check(user: AbstractBaseUser, kind: str) -> None:
    quota = live_settings.RESULT_QUOTA_BYTES
    stored = Task.objects.for_user(user).stored_results()
    # One query on every launch: the total, and the largest stored result of this kind.
    sizes = stored.aggregate(total=Sum("file_size"), largest=Max("file_size", filter=Q(kind=kind)))
    used, largest = sizes["total"] or 0, sizes["largest"] or 0
    if used + largest <= quota:
        return
    oldest = stored.order_by("finished_at").values_list("finished_at", flat=True).first()
    message = gettext("Your stored files take %(used)s of your %(quota)s, and this one would pass it.") % {
        "used": filesizeformat(used),
        "quota": filesizeformat(quota),
    }
    if oldest is not None:
        days = live_settings.RESULT_RETENTION_DAYS
        freed_at = oldest + timedelta(days=days)
        message += " " + ngettext(
            "Files are deleted %(days)s day after they are made; the oldest goes on %(date)s UTC.",
            "Files are deleted %(days)s days after they are made; the oldest goes on %(date)s UTC.",
            days,
        ) % {"days": days, "date": date_format(freed_at, "DATETIME_FORMAT", use_l10n=False)}
    raise TaskQuotaExceeded(message)

"""What a launch must pass before a task is recorded, for every kind: the launch rate and the quota.

- At most LIVE_TASKS["LAUNCH_LIMIT"] launches per user in each LIVE_TASKS["LAUNCH_WINDOW_SECONDS"] (every attempt
  counts, refused ones included), counted in Redis so that every web process shares the count.
- Stored result files (an export's JSON) of one user stay under LIVE_TASKS["RESULT_QUOTA_BYTES"]: a
  launch is refused when what the user stores now plus the size of their largest stored result of
  the same kind (a safe guess of what this one will store) would pass it. With one unfinished task
  per user and kind, a user can pass the quota by at most one result, and only on a first run.
"""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db import connections, router
from django.db.models import Max, Q, QuerySet, Sum
from django.template.defaultfilters import filesizeformat
from django.utils.formats import date_format
from django.utils.translation import gettext, ngettext

from live_tasks.ratelimits import Limit

from .conf import live_settings
from .errors import TaskError
from .models import Task, TaskQuerySet

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


# A stand-in for the user's pk while the quota's query is compiled, one per type of pk; a pk of
# another type gets the ORM's query on every launch.
_PK_SENTINELS: dict[type, Any] = {
    int: -7_340_032_917_351_229,
    str: "\x00live-tasks-user-sentinel",
    uuid.UUID: uuid.UUID("00000000-0000-4000-8000-00000000d1ce"),
}
_prepared: dict[tuple[str, str, type], tuple[str, list[Any], int] | None] = {}
_prepared_lock = threading.Lock()


def _stored_sizes(user: AbstractBaseUser, kind: str) -> tuple[int, int]:
    """What the user's stored results take, and the largest of `kind`: one query on every launch.

    Building it took the ORM 0.5 ms of CPU, a tenth of a launch's own (docs/performance.md,
    launch endpoint), so its SQL is compiled once per database, kind and type of pk, from the
    same queryset, and only the user's pk is bound at each launch.
    """
    alias = router.db_for_read(Task)
    key = (alias, kind, type(user.pk))
    if key not in _prepared:
        with _prepared_lock:
            if key not in _prepared:
                _prepared[key] = _prepare(alias, kind, type(user.pk))
    prepared = _prepared[key]
    if prepared is None:
        row = next(iter(_sizes_query(Task.objects.for_user(user), kind)), None)
    else:
        sql, params, user_at = prepared
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, [user.pk if i == user_at else param for i, param in enumerate(params)])
            row = cursor.fetchone()
    return (int(row[0] or 0), int(row[1] or 0)) if row else (0, 0)


def _sizes_query(tasks: TaskQuerySet, kind: str) -> QuerySet[Task, tuple[Any, Any]]:
    # Grouped by the one user: no row when they store nothing.
    sizes = tasks.stored_results().order_by().values("user_id")
    largest = Max("file_size", filter=Q(kind=kind))
    return sizes.annotate(total=Sum("file_size"), largest=largest).values_list("total", "largest")


def _prepare(alias: str, kind: str, pk_type: type) -> tuple[str, list[Any], int] | None:
    sentinel = _PK_SENTINELS.get(pk_type)
    if sentinel is None:
        return None
    query = _sizes_query(Task.objects.filter(user_id=sentinel), kind).query
    sql, params = query.get_compiler(using=alias).as_sql()
    at = [i for i, param in enumerate(params) if type(param) is pk_type and param == sentinel]
    return (sql, list(params), at[0]) if len(at) == 1 else None


def task_quota_check(user: AbstractBaseUser, kind: str) -> None:
    quota = live_settings.RESULT_QUOTA_BYTES
    used, largest = _stored_sizes(user, kind)
    if used + largest <= quota:
        return
    stored = Task.objects.for_user(user).stored_results()
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

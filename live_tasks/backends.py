"""The django.tasks backend: a site's `@task` functions run as tasks of this library.

`TASKS = {"default": {"BACKEND": "live_tasks.backends.LiveTasksBackend"}}`, and `my_task.enqueue()`
records a Task row of the one kind DJANGO_TASK (the function's path and its JSON arguments in
`params`) and enqueues the core's job after the commit, through live_tasks.services.task_start:
the live page, cancel, the safety net and the admin are the core's, as for any kind.

The only module of the library that imports django.tasks (Django 6.0+), or on Django 5.2 its
backport, the `django-tasks` package (the extra `django-live-tasks[django-tasks]`).
"""

from __future__ import annotations

import contextvars
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from django.core import checks
from django.core.exceptions import ValidationError
from django.utils.module_loading import import_string
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .checks import TASKS_QUEUE_NOT_LIVE
from .conf import live_settings
from .kinds import TaskKind, register
from .kinds import TaskResult as KindResult
from .models import Task
from .reporter import ProgressReporter, TaskNoLongerRunning
from .services import task_start

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django_tasks import TaskContext, TaskResult, TaskResultStatus
    from django_tasks.backends.base import BaseTaskBackend
    from django_tasks.base import Task as DjangoTask
    from django_tasks.base import TaskError
    from django_tasks.exceptions import TaskResultDoesNotExist
    from django_tasks.signals import task_enqueued, task_finished, task_started
    from django_tasks.utils import normalize_json
else:
    try:  # Django 6.0+
        from django.tasks import TaskContext, TaskResult, TaskResultStatus
        from django.tasks.backends.base import BaseTaskBackend
        from django.tasks.base import Task as DjangoTask
        from django.tasks.base import TaskError
        from django.tasks.exceptions import TaskResultDoesNotExist
        from django.tasks.signals import task_enqueued, task_finished, task_started
        from django.utils.json import normalize_json
    except ImportError:  # Django 5.2 with the django-tasks backport
        from django_tasks import TaskContext, TaskResult, TaskResultStatus
        from django_tasks.backends.base import BaseTaskBackend
        from django_tasks.base import Task as DjangoTask
        from django_tasks.base import TaskError
        from django_tasks.exceptions import TaskResultDoesNotExist
        from django_tasks.signals import task_enqueued, task_finished, task_started
        from django_tasks.utils import normalize_json

BACKEND_PATH = "live_tasks.backends.LiveTasksBackend"
DJANGO_TASK = "django_task"

# The library's statuses as Django's: Django has no "cancelled"; a cancelled task is FAILED, with
# an error of class TaskCancelled, and LiveTaskResult.live_status says "cancelled".
STATUSES = {
    Task.Status.QUEUED: TaskResultStatus.READY,
    Task.Status.RUNNING: TaskResultStatus.RUNNING,
    Task.Status.SUCCEEDED: TaskResultStatus.SUCCESSFUL,
    Task.Status.FAILED: TaskResultStatus.FAILED,
    Task.Status.CANCELLED: TaskResultStatus.FAILED,
}


class TaskCancelled(Exception):
    """The class in `TaskResult.errors` of a cancelled task (by its user, staff, or the RQ dashboard)."""


class JobLost(Exception):
    """The class in `TaskResult.errors` of a task that failed without its function raising: its
    work horse or worker was killed, it timed out past the queue's kill, or the queue lost its running job.
    The safety net failed it; the error's `traceback` is the row's one-sentence `error`."""


_owner: contextvars.ContextVar[User | None] = contextvars.ContextVar("live_tasks_owner", default=None)
_reporter: contextvars.ContextVar[ProgressReporter | None] = contextvars.ContextVar("live_tasks_reporter", default=None)


@contextmanager
def for_user(user: User) -> Iterator[None]:
    """`with live_tasks.for_user(request.user): my_task.enqueue(...)`: the tasks enqueued inside
    belong to `user`, whose pages show them live, and count against the user's launch limits (the
    enqueue raises TaskLaunchLimited past LAUNCH_LIMIT, as any kind's launch; answer it with
    live_tasks.views.task_launch_response). Without it a task has no owner: staff only."""
    token = _owner.set(user)
    try:
        yield
    finally:
        _owner.reset(token)


def progress(done: int, total: int, *, detail: str | None = None) -> None:
    """In a `@task` function run by LiveTasksBackend: `done` of `total` units are through.

    Throttled and pushed live like any kind's progress (live_tasks.ProgressReporter); raises
    TaskNoLongerRunning once the task was cancelled, so the function stops. Elsewhere (another
    backend, a direct call) it does nothing, so the same function runs anywhere.
    """
    reporter = _reporter.get()
    if reporter is None:
        return
    if detail is None:
        detail = gettext("%(done)s of %(total)s") % {"done": f"{done:,}", "total": f"{total:,}"}
    reporter(done, total, detail=detail)


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveTaskContext(TaskContext):
    """The `context` of a `@task(takes_context=True)` function: Django's, with `progress`."""

    def progress(self, done: int, total: int, *, detail: str | None = None) -> None:
        progress(done, total, detail=detail)


if TYPE_CHECKING:
    _TaskResultBase: TypeAlias = TaskResult[Any]  # generic in the backport's types only
else:
    _TaskResultBase = TaskResult


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveTaskResult(_TaskResultBase):
    """Django's TaskResult, with the library's own status ("queued", "running", "succeeded",
    "failed", "cancelled"): Django's FAILED covers both of the last two."""

    live_status: str = ""

    def refresh(self) -> None:
        TaskResult.refresh(self)  # not super(): a slotted dataclass is a new class, which breaks its cell
        refreshed = cast(LiveTaskResult, self.task.get_backend().get_result(self.id))
        object.__setattr__(self, "live_status", refreshed.live_status)


def _path_of(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _django_task(path: str) -> DjangoTask[Any, Any]:
    """The `@task` object at `path`; anything else there is refused, so a row cannot name any callable."""
    found = import_string(path)
    if not isinstance(found, DjangoTask):
        raise TypeError(f"{path} is not a django.tasks Task.")
    return found


def _errors_of(task: Task) -> list[TaskError]:
    if task.status == Task.Status.CANCELLED:
        return [TaskError(exception_class_path=_path_of(TaskCancelled), traceback=task.detail)]
    if task.status != Task.Status.FAILED:
        return []
    if task.error_class:
        return [TaskError(exception_class_path=task.error_class, traceback=task.error_traceback)]
    return [TaskError(exception_class_path=_path_of(JobLost), traceback=task.error)]


def _result_of(task: Task) -> LiveTaskResult:
    params = task.params
    django_task = _django_task(params["task"]).using(
        queue_name=params["queue"], priority=params["priority"], backend=params["backend"]
    )
    result = LiveTaskResult(
        task=django_task,
        id=str(task.id),
        status=STATUSES[Task.Status(task.status)],
        enqueued_at=task.created_at,
        started_at=task.started_at,
        finished_at=task.finished_at,
        last_attempted_at=task.started_at,
        args=params["args"],
        kwargs=params["kwargs"],
        backend=params["backend"],
        errors=_errors_of(task),
        # The library runs a task once (a requeue by the safety net is of a job that never started).
        worker_ids=[live_settings.QUEUE_BACKEND] if task.started_at else [],  # "rq" or "celery"
        live_status=str(task.status),
    )
    if task.status == Task.Status.SUCCEEDED:
        object.__setattr__(result, "_return_value", task.return_value)
    return result


def _run(task: Task, reporter: ProgressReporter) -> KindResult:
    """The kind's work, in the work horse: call the function with its arguments."""
    args, kwargs = task.params["args"], task.params["kwargs"]
    token = _reporter.set(reporter)
    try:
        django_task = _django_task(task.params["task"])
        if django_task.takes_context:
            context = LiveTaskContext(task_result=_result_of(task))
            value = normalize_json(django_task.call(context, *args, **kwargs))
        else:
            value = normalize_json(django_task.call(*args, **kwargs))
    except TaskNoLongerRunning:
        raise
    except BaseException as exc:
        # For operators (TaskResult.errors); the page shows the core's one sentence (live_tasks/jobs.py).
        Task.objects.filter(pk=task.pk).update(
            error_class=_path_of(type(exc)), error_traceback="".join(traceback.format_exception(exc))
        )
        raise
    finally:
        _reporter.reset(token)
    # Written in the transaction that marks the task succeeded, so a read never sees one without the other.
    return KindResult(
        detail=gettext("Done."), commit=lambda: Task.objects.filter(pk=task.pk).update(return_value=value)
    )


def _label_for(task: Task) -> str:
    """The function's name in words ("recount_words": "Recount words"), on the pages and in the strip."""
    name = str(task.params.get("task", "")).rsplit(".", 1)[-1].replace("_", " ").strip()
    return name.capitalize() or str(django_task_kind.label)


django_task_kind = register(TaskKind(name=DJANGO_TASK, label=_("Background task"), run=_run, label_for=_label_for))


class LiveTasksBackend(BaseTaskBackend):
    """django.tasks' backend contract on this library: the job queue (RQ or Celery) runs the job, the
    Task row is the result."""

    supports_defer = False  # run_after is refused (InvalidTask) by validate_task
    supports_async_task = False  # progress() writes through the ORM, synchronously
    supports_get_result = True
    supports_priority = False  # one queue, first in first out

    def enqueue(self, task: DjangoTask[Any, Any], args: Any, kwargs: Any) -> TaskResult[Any]:
        self.validate_task(task)
        params = {
            "task": task.module_path,
            "args": normalize_json(args),  # TypeError for what JSON cannot carry, before any row exists
            "kwargs": normalize_json(kwargs),
            "backend": self.alias,
            "queue": task.queue_name,
            "priority": task.priority,
        }
        # On behalf of a user, the user's launch limits apply as to any kind (TaskLaunchLimited,
        # TaskQuotaExceeded: TaskErrors, raised here); a task without an owner is the site's own.
        owner = _owner.get()
        row = task_start(user=owner, kind=DJANGO_TASK, params=params, limited=owner is not None)
        result = _result_of(row)
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult[Any]:
        try:
            row = Task.objects.get(pk=result_id, kind=DJANGO_TASK)
        except (Task.DoesNotExist, ValidationError, ValueError):
            raise TaskResultDoesNotExist(result_id) from None
        return _result_of(row)

    def check(self, **kwargs: Any) -> Iterable[checks.CheckMessage]:
        # The job goes to the library's one queue (LIVE_TASKS["QUEUE"]), whatever the task's queue_name.
        others = sorted(self.queues - {live_settings.QUEUE})
        if others:
            yield checks.Error(
                f"TASKS[{self.alias!r}]['QUEUES'] names {others}, but LiveTasksBackend runs every task on"
                f" LIVE_TASKS['QUEUE'] ({live_settings.QUEUE!r}).",
                hint=f"Set QUEUES to [{live_settings.QUEUE!r}].",
                id=TASKS_QUEUE_NOT_LIVE,
            )


def on_task_started(sender: TaskKind | None, task: Task, **kwargs: Any) -> None:
    """The library's signals as Django's, for the tasks of `@task` functions (connected in apps.py)."""
    if task.kind == DJANGO_TASK:
        task_started.send(LiveTasksBackend, task_result=_result_of(task))


def on_task_finished(sender: TaskKind | None, task: Task, **kwargs: Any) -> None:
    if task.kind == DJANGO_TASK:
        task_finished.send(LiveTasksBackend, task_result=_result_of(task))

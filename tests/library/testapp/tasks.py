"""`@task` functions that exist only in the tests, run through live_tasks.backends.LiveTasksBackend
(tests/library/settings.py's TASKS), as Django's own tests/tasks/tasks.py keeps them."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from django.conf import settings

import live_tasks

try:
    from django.tasks import task as _task
except ImportError:
    from django_tasks import task as _task  # Django 5.2: the backport

# On the library's one queue, which the backend requires (live_tasks.E010): "default" on RQ, the
# session's own on Celery (tests/library/settings.py).
task = partial(_task, queue_name=settings.LIVE_TASKS["QUEUE"])


@task
def noop_task(*args: Any, **kwargs: Any) -> None:
    return None


@task
def calculate_meaning_of_life() -> int:
    return 42


@task
def echo_args(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


@task
def failing_task_value_error() -> None:
    raise ValueError("This task failed due to ValueError")


@task
def return_not_json() -> object:
    return object()


@task
def count_steps(steps: int, step_seconds: float = 0.05) -> int:
    """Reports each step through live_tasks.progress; stops there once cancelled."""
    for step in range(1, steps + 1):
        time.sleep(step_seconds)
        live_tasks.progress(step, steps, detail=f"Step {step} of {steps}")
    return steps


@task(takes_context=True)
def count_steps_with_context(context: Any, steps: int) -> dict[str, Any]:
    for step in range(1, steps + 1):
        context.progress(step, steps)
    return {"steps": steps, "attempt": context.attempt, "id": context.task_result.id}


@task
def sleep_quietly(seconds: float) -> str:
    """Never reports progress: its page still goes queued, running, succeeded."""
    time.sleep(seconds)
    return "slept"


CALLED: list[str] = []


def not_a_task() -> None:
    """A plain function: a row naming it must not get it called."""
    CALLED.append("not_a_task")


@task
def failing_task_system_exit() -> None:
    raise SystemExit("This task failed due to SystemExit")


@task
def complex_exception() -> None:
    raise ValueError(ValueError("This task failed"))


@task(takes_context=True)
def get_task_id(context: Any) -> str:
    return str(context.task_result.id)

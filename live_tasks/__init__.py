"""django-live-tasks: long background work in Django with live progress, cancel and a safety net.

The public API is what this module names (`from live_tasks import TaskKind, register, task_start`),
plus `live_tasks.views` (task_launch_response, task_error_response), `live_tasks.urls`,
`live_tasks.asgi`, `live_tasks.files`, `live_tasks.signals`, `live_tasks.conf` (live_settings),
`live_tasks.ratelimits`, `live_tasks.health`, `live_tasks.http`, `live_tasks.redisclients`
(rq_connection) and `live_tasks.worker` (TaskWorker), as docs/api.md describes them.
Names are imported on first use, so `import live_tasks` loads no model and reads no setting.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> the module that defines it
_PUBLIC = {
    "TaskKind": "live_tasks.kinds",
    "TaskResult": "live_tasks.kinds",
    "register": "live_tasks.kinds",
    "ProgressReporter": "live_tasks.reporter",
    "TaskNoLongerRunning": "live_tasks.reporter",
    "task_start": "live_tasks.services",
    "task_cancel": "live_tasks.services",
    "task_delete": "live_tasks.services",
    "tasks_delete_for_user": "live_tasks.services",
    "TaskAlreadyRunning": "live_tasks.services",
    "TaskError": "live_tasks.errors",
    "TaskStepFailed": "live_tasks.errors",
    "TaskInputInvalid": "live_tasks.errors",
    "with_retries": "live_tasks.retries",
    "task_to_dict": "live_tasks.serializers",
    "task_get_for_user": "live_tasks.selectors",
    "task_page_for_user": "live_tasks.selectors",
    "Task": "live_tasks.models",
    "TaskId": "live_tasks.types",
    # django.tasks (live_tasks/backends.py, which imports it): only for a site that installs it.
    "for_user": "live_tasks.backends",
    "progress": "live_tasks.backends",
}
__all__ = [*_PUBLIC, "__version__"]

if TYPE_CHECKING:
    from .backends import for_user as for_user
    from .backends import progress as progress
    from .errors import TaskError as TaskError
    from .errors import TaskInputInvalid as TaskInputInvalid
    from .errors import TaskStepFailed as TaskStepFailed
    from .kinds import TaskKind as TaskKind
    from .kinds import TaskResult as TaskResult
    from .kinds import register as register
    from .models import Task as Task
    from .reporter import ProgressReporter as ProgressReporter
    from .reporter import TaskNoLongerRunning as TaskNoLongerRunning
    from .retries import with_retries as with_retries
    from .selectors import task_get_for_user as task_get_for_user
    from .selectors import task_page_for_user as task_page_for_user
    from .serializers import task_to_dict as task_to_dict
    from .services import TaskAlreadyRunning as TaskAlreadyRunning
    from .services import task_cancel as task_cancel
    from .services import task_delete as task_delete
    from .services import task_start as task_start
    from .services import tasks_delete_for_user as tasks_delete_for_user
    from .types import TaskId as TaskId


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'live_tasks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

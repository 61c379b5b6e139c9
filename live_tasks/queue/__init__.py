"""The job queue behind the tasks, as one small interface with two implementations.

`LIVE_TASKS["QUEUE_BACKEND"]` chooses it: "rq" (django-rq on Redis, the default; live_tasks/queue/rq.py)
or "celery" (Celery, on RabbitMQ or any broker it speaks; live_tasks/queue/celery.py). Kinds, pages,
the socket protocol, the admin and the safety net use only what is here; the task row stays the
truth on both, so a job that runs twice or after its task ended does nothing (live_tasks/state.py).

What a backend does:
- `enqueue` the core's one job for a task, after the row is committed (the caller's on_commit);
- `stop` a task's job: off the queue if it waits, its process killed if it runs;
- `state` of a job for the safety net (live_tasks/reconcile.py): waiting, started (with its last
  heartbeat), ended, or missing;
- `delete_records` of ended tasks' jobs, for pruning;
- `health` for /healthz: queued jobs and live workers.
The worker side lives with each: RQ's TaskWorker (live_tasks/worker.py), Celery's task and request
class (live_tasks/queue/celery.py); both heartbeat running jobs every JOB_HEARTBEAT_SECONDS and end
the task of a killed job process at once, in the parent that saw it die.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from redis.exceptions import RedisError

from ..conf import live_settings

if TYPE_CHECKING:
    from ..kinds import TaskKind

BACKENDS = {
    "rq": "live_tasks.queue.rq.RQBackend",
    "celery": "live_tasks.queue.celery.CeleryBackend",
}

# What the safety net needs to know of a job, whichever queue runs it.
JobPhase = Literal["missing", "waiting", "started", "finished", "failed", "stopped"]


@dataclass(frozen=True)
class JobState:
    phase: JobPhase
    # A started job's last sign of life (its heartbeat, else its start); None if it has none yet.
    heartbeat: datetime | None = None
    # A failed job whose process died under it (killed, out of memory), as the queue recorded it.
    worker_lost: bool = False


class JobQueueUnreachable(Exception):
    """The broker did not answer (Celery); RQ's backend raises redis-py's own RedisError."""


# What a queue operation raises when the queue cannot be reached, on either backend.
QUEUE_ERRORS: tuple[type[Exception], ...] = (RedisError, JobQueueUnreachable)


class QueueBackend(Protocol):
    name: str

    def enqueue(self, task_id: str, *, kind: TaskKind, language: str) -> None: ...

    def stop(self, task_id: str) -> bool: ...

    def state(self, task_id: str) -> JobState: ...

    def delete_records(self, task_ids: list[str]) -> None: ...

    def health(self) -> dict[str, Any]: ...


_backends: dict[str, QueueBackend] = {}
_lock = threading.Lock()


def queue_backend() -> QueueBackend:
    """The backend that LIVE_TASKS["QUEUE_BACKEND"] names, built once per process (and per value)."""
    name = live_settings.QUEUE_BACKEND
    backend = _backends.get(name)
    if backend is None:
        from django.utils.module_loading import import_string

        with _lock:
            backend = _backends.get(name)
            if backend is None:
                backend = _backends[name] = import_string(BACKENDS.get(name, name))()
    return backend


def task_job_enqueue(task_id: str, *, kind: TaskKind, language: str = "") -> None:
    """Enqueue the job of a task; the task id is the job id. Raises one of QUEUE_ERRORS.

    `language` (the task's) is what the job writes its detail and error in: passed with the job,
    so the job need not read the row for it before it starts.
    """
    queue_backend().enqueue(task_id, kind=kind, language=language)


def task_job_stop(task_id: str) -> bool:
    """Best effort: take a queued job off the queue, or have its worker kill a running one.

    Returns whether a job process may still be running the task (its job started, or the queue
    could not say): then only its worker, once the process is gone, or the safety net cleans up
    after it. The task row is already final when this runs, so a job that slips through finds its
    task no longer queued or running and does nothing (live_tasks/state.py).
    """
    return queue_backend().stop(task_id)


def task_job_state(task_id: str) -> JobState:
    """What the queue says of a task's job (raises one of QUEUE_ERRORS)."""
    return queue_backend().state(task_id)


def task_jobs_delete(task_ids: list[str]) -> None:
    """Delete the queue's records of ended tasks' jobs. Raises one of QUEUE_ERRORS."""
    queue_backend().delete_records(task_ids)


def queue_health() -> dict[str, Any]:
    """`{"ok": True, "queued_jobs": N, "workers": N, ...}` for /healthz (raises when unreachable)."""
    return queue_backend().health()

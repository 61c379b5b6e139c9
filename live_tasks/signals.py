"""Signals of a task's life, in the manner of django.tasks: metrics, audit logs or a site's own
notifications connect a receiver here instead of touching the core.

Every signal is sent with
- `sender`: the task's TaskKind (the registered object, so `connect(receiver, sender=my_kind)`
  hears one kind only), or None for a task whose kind no installed app registers any more;
- `task`: the Task row as it was just committed (live_tasks/state.py reads it back after its UPDATE).
`task_finished` also gets `status`: "succeeded", "failed" or "cancelled".

Each is sent once per task (task_progress once per progress write) from the one place its change
happens, after that change's commit, so a receiver that queries the row sees it:
- task_enqueued: in the web process that launched the task, once its job is on the queue
  (live_tasks/services.py). Not again when the safety net requeues a job Redis lost.
- task_started, task_progress: in the work horse running the job (live_tasks/state.py).
- task_finished: wherever the task ends. Succeeded or failed by its job: the work horse. Cancelled
  by a user: the web process (or the worker, for a stop from the RQ dashboard). Failed or cancelled
  by the safety net (live_tasks/reconcile.py): the scheduler, the worker whose work horse died, or the
  web process of a relaunch. The conditional UPDATE lets only one of them end a task, so it is
  sent once.
Processes apart send in no guaranteed order: task_started may come before the web process has
sent task_enqueued.

Receivers are called with send_robust: one that raises is logged (the "django.dispatch" logger)
and never breaks a launch, a job or the safety net. Django's own task backends use `send`; here a
signal is sent in the middle of work that must run to its end: raised into a failing job, it would
skip the failure's cleanup; raised after an enqueue, the launch would answer an error for a task
that is queued and will run.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.dispatch import Signal

from .kinds import UnknownTaskKind

if TYPE_CHECKING:
    from .kinds import TaskKind
    from .models import Task

task_enqueued = Signal()
task_started = Signal()
task_progress = Signal()  # at most once per LIVE_TASKS["PROGRESS_INTERVAL"]: it follows the throttled writes
task_finished = Signal()


def task_signal_on_commit(signal: Signal, task: Task, **kwargs: Any) -> None:
    """Send `signal` for `task` once the current transaction commits: at once in autocommit (a job,
    the safety net), at the end of the block when a caller holds one (a cancel inside a user's
    deletion), and never if that rolls back."""
    transaction.on_commit(partial(task_signal_send, signal, task, **kwargs))


def task_signal_send(signal: Signal, task: Task, **kwargs: Any) -> None:
    """Send `signal` for `task` now: for a caller already past the commit of the task's change."""
    signal.send_robust(sender=_sender(task), task=task, **kwargs)


def _sender(task: Task) -> TaskKind | None:
    try:
        return task.kind_spec
    except UnknownTaskKind:
        return None

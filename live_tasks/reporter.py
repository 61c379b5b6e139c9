"""What a running job is given to report its progress (`live_tasks.progress`, the function for `@task`
functions, is live_tasks/backends.py): throttled writes, and word of a cancel."""

from __future__ import annotations

import os
import signal
import time

from .conf import live_settings
from .state import task_set_progress
from .types import TaskId


class TaskNoLongerRunning(Exception):
    """The task was ended elsewhere (cancelled, or failed by the safety net): stop working on it."""


# The worker that forked this process, in a work horse (live_tasks/worker.py sets it); None elsewhere.
_worker_pid: int | None = None


def progress_watch_worker(worker_pid: int) -> None:
    """In a work horse: from now on every progress report checks that `worker_pid` is its parent."""
    global _worker_pid
    _worker_pid = worker_pid
    _die_if_orphaned()


def _die_if_orphaned() -> None:
    """A work horse whose worker is gone ends at once, the way PR_SET_PDEATHSIG ends it on Linux.

    The fallback where the kernel's signal cannot help: a system without prctl, or a worker that
    died before its horse set it up. SIGKILL, not an exception: the horse is then lost exactly as
    if the kernel had killed it, and the safety net fails its task ("worker lost") and cleans up.
    Progress is reported between units of work, so no transaction is open here.
    """
    if _worker_pid is not None and os.getppid() != _worker_pid:
        os.kill(os.getpid(), signal.SIGKILL)


class ProgressReporter:
    """Records a running task's progress, throttled: at most one write per interval, never per row,
    and none in the first interval (the task was just marked running): a job shorter than that
    costs no progress writes at all, only its start and its end.

    Progress only moves forward and stays below 100 until the task has succeeded; a new detail is
    written even when the percentage stands still, so the user sees the work go on. Both methods
    raise TaskNoLongerRunning once the task was ended meanwhile: RQ's stop-job command normally
    kills the job first; this covers a lost command.
    """

    def __init__(self, task_id: TaskId, *, interval: float | None = None) -> None:
        self.task_id = task_id
        self.interval = live_settings.PROGRESS_INTERVAL if interval is None else interval
        self._last_write = time.monotonic()
        self._last_percent = 0
        self._last_detail = ""
        self._percent = 0  # the latest percentage reported, written or not

    def __call__(self, done: int, total: int, *, detail: str) -> None:
        """`done` of `total` units (rows, bytes...) are through; `detail` says it to a person."""
        _die_if_orphaned()  # one getppid() per call: unthrottled, it costs nothing next to a unit of work
        now = time.monotonic()
        percent = max(self._percent, min(99, done * 100 // total) if total > 0 else 0)
        self._percent = percent
        if now - self._last_write < self.interval:
            return
        if percent == self._last_percent and detail == self._last_detail:
            return
        self._last_write, self._last_percent, self._last_detail = now, percent, detail
        if task_set_progress(self.task_id, progress=percent, detail=detail) is None:
            raise TaskNoLongerRunning(self.task_id)

    def say(self, detail: str) -> None:
        """A new detail line now, unthrottled, with the latest percentage: for a step that may take
        a while or that the user must see at once ("Emailing…", "Retrying in 2 s…")."""
        _die_if_orphaned()
        self._last_write, self._last_percent, self._last_detail = time.monotonic(), self._percent, detail
        if task_set_progress(self.task_id, progress=self._percent, detail=detail) is None:
            raise TaskNoLongerRunning(self.task_id)

"""What a running job is given to report its progress: throttled writes, and word of a cancel."""

from __future__ import annotations

import time

from django.conf import settings

from .state import TaskId, task_set_detail, task_set_progress


class TaskNoLongerRunning(Exception):
    """The task was ended elsewhere (cancelled, or failed by the safety net): stop working on it."""


class ProgressReporter:
    """Records a running task's progress, throttled: at most one write per interval, never per row.

    Progress only moves forward and stays below 100 until the task has succeeded; a new detail is
    written even when the percentage stands still, so the user sees the work go on. Both methods
    raise TaskNoLongerRunning once the task was ended meanwhile: RQ's stop-job command normally
    kills the job first; this covers a lost command.
    """

    def __init__(self, task_id: TaskId, *, interval: float | None = None) -> None:
        self.task_id = task_id
        self.interval = settings.TASK_PROGRESS_INTERVAL if interval is None else interval
        self._last_write = float("-inf")
        self._last_percent = 0
        self._last_detail = ""

    def __call__(self, done: int, total: int, *, detail: str) -> None:
        """`done` of `total` units (rows, bytes...) are through; `detail` says it to a person."""
        now = time.monotonic()
        if now - self._last_write < self.interval:
            return
        percent = max(self._last_percent, min(99, done * 100 // total) if total > 0 else 0)
        if percent == self._last_percent and detail == self._last_detail:
            return
        self._last_write, self._last_percent, self._last_detail = now, percent, detail
        if task_set_progress(self.task_id, progress=percent, detail=detail) is None:
            raise TaskNoLongerRunning(self.task_id)

    def say(self, detail: str) -> None:
        """A new detail line now, unthrottled: "Emailing…", "Retrying in 4 s…"."""
        if task_set_detail(self.task_id, detail) is None:
            raise TaskNoLongerRunning(self.task_id)

"""The RQ worker class of this project (settings.RQ["WORKER_CLASS"]), used by `rqworker`."""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import sys
import uuid
from datetime import datetime
from typing import Any

from django.db import connections
from django.urls import reverse
from rq import Worker
from rq.job import JobStatus

from live_tasks.push.publish import publisher_warm_up

from .cleanup import task_cleanup
from .conf import live_settings
from .kinds import all_kinds
from .reconcile import task_fail_worker_lost
from .reporter import progress_watch_worker

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def warm_up() -> None:
    """Pay once, in the worker, what each forked work horse would otherwise pay again per job.

    A work horse is a fork of this process: what is imported, compiled or cached here before the
    fork is there for free in every horse (copy-on-write). Connections are not: each is closed
    again here, and before every fork (TaskWorker.fork_work_horse), so no horse shares a socket
    with its worker or with another horse.
    """
    for connection in connections.all():
        connection.ensure_connection()  # imports the database backend's modules
        connection.close()
        if connection.settings_dict.get("OPTIONS", {}).get("pool"):
            # A pool keeps sockets open, which every forked horse would share: none in a worker
            # (project/asgi.py turns pooling on for daphne only). Each horse connects on its own.
            logger.warning("DATABASE_POOL is on in a worker; closing the pool (it is meant for daphne)")
            connection.close_pool()  # type: ignore[attr-defined]  # PostgreSQL's wrapper has it (Django 5.1+)
    reverse("live_tasks:detail", kwargs={"task_id": uuid.uuid4()})  # builds the URL resolver
    publisher_warm_up()
    datetime.strptime("2000", "%Y")  # imports _strptime, which RQ uses to read dates in every horse
    for kind in all_kinds():
        if kind.warm_up is not None:
            kind.warm_up()
    # Keep the garbage collector of each horse off everything loaded so far: scanning it would
    # touch, and so copy, most of the memory the horse shares with this process.
    gc.freeze()


class TaskWorker(Worker):
    """RQ's forking worker, plus two things the task rows need.

    - Running jobs heartbeat every LIVE_TASKS["JOB_HEARTBEAT_SECONDS"] instead of every 30 s, so the
      safety net (live_tasks/reconcile.py) tells a lost worker from a slow one within seconds.
    - When a work horse dies (OOM killer, SIGKILL) its task is ended at once, here in the parent,
      and cleaned up: the horse was the only writer.
    - It warms up before taking jobs (warm_up), so a short job does not pay for cold caches, and
      runs at a lower CPU priority than the web processes (WORKER_NICENESS).
    - No database connection crosses a fork (fork_work_horse, execute_job): each horse opens its
      own, and the worker's own database work between jobs leaves none open.
    - A job stopped by a cancel leaves no record: RQ would keep it in its failed registry (for its
      failure_ttl); a cancel is not a failure an operator needs to see.
    - A work horse dies with its worker (horse_die_with_worker).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("job_monitoring_interval", live_settings.JOB_HEARTBEAT_SECONDS)
        super().__init__(*args, **kwargs)
        self._worker_pid = os.getpid()  # what each forked horse checks its parent against
        warm_up()
        if live_settings.WORKER_NICENESS:
            # Background work yields the CPU to the web processes when both want it: a burst of
            # launches is answered, and pushed, first (docs/performance.md, the burst benchmark).
            os.nice(live_settings.WORKER_NICENESS)

    def fork_work_horse(self, job: Any, queue: Any) -> None:
        # The worker itself uses the database between jobs: the stop callback of a cancel
        # (live_tasks.jobs.task_job_stopped) and handle_work_horse_killed run here, in the parent. A
        # connection still open at the fork would be the horse's too: one PostgreSQL session for
        # both, which a horse killed mid-stream leaves holding its server-side cursor or an open
        # transaction for every later horse (DuplicateCursor at the next export's first cursor).
        # Closed here, in the parent, the horse inherits none and connects on its own; closing an
        # inherited one in the horse instead would end the parent's session under it.
        connections.close_all()
        super().fork_work_horse(job, queue)

    def execute_job(self, job: Any, queue: Any) -> None:
        try:
            super().execute_job(job, queue)
        finally:
            # The parent's database work for this job (above) is done: an idle worker holds no
            # session, and the next one starts from a fresh connection, not a stale one.
            connections.close_all()

    def main_work_horse(self, job: Any, queue: Any) -> None:
        self.horse_die_with_worker()
        super().main_work_horse(job, queue)

    def horse_die_with_worker(self) -> None:
        """In the work horse, first thing after the fork: never outlive this worker.

        RQ puts each horse in a process group of its own (os.setpgrp), so a signal to the worker's
        group (supervisord's stopasgroup/killasgroup, a terminal's Ctrl-C) does not reach it, and a
        worker that dies (SIGKILL, OOM killer, supervisord's kill after stopwaitsecs) leaves its
        horse running. An orphaned horse goes on writing for a task that the safety net has since
        failed and cleaned up, and holds database connections and locks. On Linux the kernel sends
        the horse SIGKILL when the worker dies (PR_SET_PDEATHSIG); then, or elsewhere, the progress
        reporter checks the parent at every report (live_tasks/reporter.py), which also covers a worker
        that died before prctl ran. The horse's task is then failed as "worker lost", as for any
        killed horse.
        """
        if sys.platform == "linux":
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
                logger.warning("prctl(PR_SET_PDEATHSIG) failed: errno %s", ctypes.get_errno())
        progress_watch_worker(self._worker_pid)  # kills this horse now if the worker is already gone

    def handle_work_horse_killed(self, job: Any, retpid: int, ret_val: int, rusage: Any) -> None:
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)  # type: ignore[no-untyped-call]  # rq leaves it unannotated
        if task_fail_worker_lost(job.id):
            logger.warning("Task %s failed: its work horse died (waitpid status %s)", job.id, ret_val)
        task_cleanup(job.id)

    def handle_job_failure(self, job: Any, queue: Any, *args: Any, **kwargs: Any) -> None:
        super().handle_job_failure(job, queue, *args, **kwargs)
        try:
            if job.get_status(refresh=True) == JobStatus.STOPPED:
                job.delete()
        except Exception:
            logger.exception("Could not delete the record of stopped job %s", job.id)

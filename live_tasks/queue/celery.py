"""The Celery backend (LIVE_TASKS["QUEUE_BACKEND"] = "celery"): the core's job as a task of the
site's own Celery app, on its broker (RabbitMQ over AMQP, or any other that Celery speaks).

The job is one shared task, `live_tasks.run_task`, sent to LIVE_TASKS["QUEUE"] with its task id as
the message id, acknowledged late: a message whose worker died is delivered again, and the task row
decides (a second delivery finds the task running or ended and does nothing; live_tasks/state.py).

Celery keeps no record of a job that the safety net could read without a result backend, so the
job keeps one of its own in the library's Redis (the one that rate limits and socket counts use):
a small hash per running job, claimed as the job starts (before its task is marked running), beaten every
JOB_HEARTBEAT_SECONDS by a thread of the pool child, and closed when the job ends. A queued task has
no record: the safety net then asks the broker whether any message waits in the queue, and
re-enqueues the task once none does (a broker restarted without persistence lost it).

In the worker's main process, TaskRequest sees what the pool child cannot report itself: a child
killed (SIGKILL, the OOM killer: its task fails "worker lost" at once), a child terminated by a
cancel (revoke with terminate: its task is cleaned up), a hard time limit. The child dies with the
main process (Celery's prefork pool sets PR_SET_PDEATHSIG), and the progress reporter checks its
parent too, as in an RQ work horse.

This module imports Celery: it is imported only when the setting names it (live_tasks.apps).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from billiard.exceptions import Terminated, WorkerLostError
from celery import shared_task
from celery.signals import worker_init, worker_process_init
from celery.worker.request import Request
from django.conf import settings
from django.db import connections
from django.utils import translation
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from .. import redisclients
from ..cleanup import task_cleanup
from ..conf import live_settings
from ..jobs import task_run_job
from ..kinds import TaskKind
from ..reporter import progress_watch_worker
from . import JobQueueUnreachable, JobState

logger = logging.getLogger(__name__)

TASK_NAME = "live_tasks.run_task"
RECORD_KEY = "live_tasks:celery:job:{}"
# A job past its soft time limit (SoftTimeLimitExceeded, which it handles as a timeout) is killed
# this much later if it has not ended, as RQ's worker kills a work horse past its timeout.
HARD_LIMIT_GRACE_SECONDS = 30
# The safety net reads the queue's depth once per pass, not once per queued task.
DEPTH_CACHE_SECONDS = 1.0
# What a broker that cannot be reached raises through kombu and py-amqp.
BROKER_ERRORS: tuple[type[Exception], ...] = (OperationalError, OSError)


# --- The job record: what the safety net reads of a job ------------------------------------------
def _record_key(task_id: str) -> str:
    return RECORD_KEY.format(task_id)


def _record_write(task_id: str, **fields: str) -> None:
    key = _record_key(task_id)
    mapping: dict[str | bytes, str] = {"heartbeat": f"{time.time():.3f}"}
    mapping.update(fields)
    with redisclients.rq_connection().pipeline(transaction=False) as pipe:
        pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]  # redis-py's mapping type is invariant
        pipe.expire(key, live_settings.FAILED_JOB_TTL_SECONDS)
        pipe.execute()


def _record_end(task_id: str, phase: str, *, lost: bool = False) -> None:
    try:
        _record_write(task_id, phase=phase, lost="1" if lost else "0")
    except RedisError as exc:  # the record then stays "started" and falls silent: the safety net ends it
        logger.warning("Could not record the end of job %s: %r", task_id, exc)


class _Heartbeat:
    """The job's record, beaten from a thread of the pool child while the job runs."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.claimed = False
        self.started = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def claim(self) -> None:
        """Before the task is marked running: a record "started" now, unless one exists already (the
        run of an earlier delivery's). Without it, the safety net could read a running task with no
        record, between its row's commit and start(), and fail it as lost."""
        key = _record_key(self.task_id)
        connection = redisclients.rq_connection()
        if connection.hsetnx(key, "phase", "started"):
            self.claimed = True
            _record_write(self.task_id, pid=str(os.getpid()))

    def release(self) -> None:
        """The run was skipped: the record it claimed goes (an earlier run's stays)."""
        if self.claimed and not self.started:
            redisclients.rq_connection().delete(_record_key(self.task_id))

    def start(self) -> None:
        if not self.claimed:  # an earlier delivery's record: this run's from now on
            _record_write(self.task_id, phase="started", pid=str(os.getpid()))
        self.started = True
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{self.task_id}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        key = _record_key(self.task_id)
        connection = redisclients.rq_connection()
        while not self._stop.wait(live_settings.JOB_HEARTBEAT_SECONDS):
            try:
                connection.hset(key, "heartbeat", f"{time.time():.3f}")
            except RedisError as exc:  # a Redis blip: the next beat may pass; a long outage looks lost
                logger.debug("Heartbeat of job %s failed: %r", self.task_id, exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


# --- The worker side -----------------------------------------------------------------------------
@shared_task(
    name=TASK_NAME,
    bind=True,
    # Acknowledged once the job is over: a message whose worker died is delivered again, to a job
    # that finds its task no longer queued. Acknowledged too when it failed or timed out: the
    # task row says so already, and a redelivery would only skip.
    acks_late=True,
    acks_on_failure_or_timeout=True,
    reject_on_worker_lost=False,
    ignore_result=True,
    Request="live_tasks.queue.celery:TaskRequest",
)
def run_task(self: Any, task_id: str, language: str = "") -> str:
    """The core's job (live_tasks.jobs.task_run_job) with its record and heartbeat."""
    heartbeat = _Heartbeat(task_id)
    heartbeat.claim()
    try:
        outcome = task_run_job(task_id, language, on_running=heartbeat.start)
    except BaseException:
        heartbeat.stop()
        if heartbeat.started:
            _record_end(task_id, "failed")
        else:
            heartbeat.release()
        raise
    heartbeat.stop()
    if heartbeat.started:
        _record_end(task_id, "finished")
    else:  # skipped: the record of a run that did start it stays
        heartbeat.release()
    return outcome


def _in_main_process(task_id: str, end: Callable[[], Any], phase: str, *, lost: bool = False) -> None:
    """Ends a task whose job process is gone, in the worker's main process; never raises there."""
    try:
        end()
        task_cleanup(task_id)
        _record_end(task_id, phase, lost=lost)
    except Exception:
        logger.exception("Could not end task %s after its job process was gone", task_id)
    finally:
        # As an RQ worker between jobs: the main process forks new pool children and holds no session.
        connections.close_all()


class TaskRequest(Request):  # type: ignore[misc]  # Celery is untyped
    """Celery's request, in the worker's main process, plus the task's end when its child is gone."""

    def on_failure(self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False) -> None:
        super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)
        exc = getattr(exc_info.exception, "exc", exc_info.exception)  # unwraps ExceptionWithTraceback
        task_id = self.id
        language = (self.kwargs or {}).get("language") or settings.LANGUAGE_CODE
        stopped = isinstance(exc, Terminated) or (
            isinstance(exc, SystemExit | KeyboardInterrupt) and (self._already_revoked or self._already_cancelled)
        )
        if stopped:  # a cancel killed it: the row says cancelled already, unless the stop came from elsewhere
            from ..state import task_mark_cancelled

            def cancel() -> None:
                with translation.override(language):
                    task_mark_cancelled(task_id)

            _in_main_process(task_id, cancel, "stopped")
        elif isinstance(exc, WorkerLostError | SystemExit | KeyboardInterrupt):
            from ..reconcile import task_fail_worker_lost

            def fail() -> None:
                if task_fail_worker_lost(task_id):
                    logger.warning("Task %s failed: its pool process died (%s)", task_id, exc)

            _in_main_process(task_id, fail, "failed", lost=True)

    def on_timeout(self, soft: bool, timeout: float) -> None:
        super().on_timeout(soft, timeout)
        if not soft:  # the child is killed: it could not end its task itself
            from ..reconcile import task_fail_timed_out

            _in_main_process(self.id, lambda: task_fail_timed_out(self.id), "failed")


@worker_init.connect
def _warm_up_worker(**kwargs: Any) -> None:
    """The main process, before it forks its pool: the library's system checks, as `rqworker` runs
    them (a worker never starts misconfigured), then what RQ's TaskWorker does before its first job."""
    from django.core.management.base import BaseCommand, SystemCheckError

    from ..worker import warm_up

    try:
        BaseCommand().check(tags=["live_tasks"])
    except SystemCheckError as exc:
        # Celery logs an Exception raised by a signal handler and starts the worker anyway (its
        # Signal.send catches them); SystemExit passes through and stops it before its pool starts.
        raise SystemExit(str(exc)) from exc
    warm_up()
    if live_settings.WORKER_NICENESS:
        os.nice(live_settings.WORKER_NICENESS)  # the pool children inherit it


@worker_process_init.connect
def _watch_main_process(**kwargs: Any) -> None:
    """Each pool child, once forked: never outlive the main process (see live_tasks/reporter.py)."""
    progress_watch_worker(os.getppid())


# --- The backend ---------------------------------------------------------------------------------
class CeleryBackend:
    """live_tasks.queue.QueueBackend on Celery: the site's app (Celery's current app) and its broker."""

    name = "celery"

    def __init__(self) -> None:
        self._depth: tuple[float, int] | None = None  # (when read, messages ready)
        self._depth_lock = threading.Lock()

    @property
    def app(self) -> Any:
        return run_task.app

    def enqueue(self, task_id: str, *, kind: TaskKind, language: str) -> None:
        timeout = kind.job_timeout()
        try:
            run_task.apply_async(
                args=(task_id,),
                kwargs={"language": language} if language else {},
                task_id=task_id,
                queue=live_settings.QUEUE,
                soft_time_limit=timeout,
                time_limit=timeout + HARD_LIMIT_GRACE_SECONDS,
                # One reconnect covers a pooled connection that a broker restart broke; a broker that
                # is down answers the launch with 503 within the app's broker_connection_timeout.
                retry=True,
                retry_policy={"max_retries": 1, "interval_start": 0.1, "interval_step": 0.2, "interval_max": 0.2},
            )
        except BROKER_ERRORS as exc:
            raise JobQueueUnreachable(str(exc)) from exc

    def stop(self, task_id: str) -> bool:
        try:
            record = redisclients.rq_connection().hgetall(_record_key(task_id))
            if record.get(b"phase") == b"started":
                # SIGKILL, as RQ's stop-job command: a job cannot delay its cancel. TaskRequest then
                # cleans up in the worker's main process.
                self.app.control.revoke(task_id, terminate=True, signal="SIGKILL")
                return True
            # Not started: every worker drops the message when it comes (and the row would make the
            # job skip anyway).
            self.app.control.revoke(task_id)
            return False
        except (RedisError, OperationalError, OSError) as exc:
            logger.warning("Could not stop job %s: %r", task_id, exc)
            return True

    def state(self, task_id: str) -> JobState:
        record: dict[bytes, bytes] = redisclients.rq_connection().hgetall(_record_key(task_id))  # type: ignore[assignment]
        if record:
            heartbeat = float(record.get(b"heartbeat") or 0) or None
            return JobState(
                record.get(b"phase", b"started").decode(),  # type: ignore[arg-type]  # written above
                heartbeat=datetime.fromtimestamp(heartbeat, tz=UTC) if heartbeat else None,
                worker_lost=record.get(b"lost") == b"1",
            )
        # No record: not started. Waiting while the queue holds messages; else its message is gone.
        return JobState("waiting" if self._messages_ready() else "missing")

    def _messages_ready(self) -> int:
        with self._depth_lock:
            if self._depth is None or time.monotonic() - self._depth[0] > DEPTH_CACHE_SECONDS:
                self._depth = (time.monotonic(), self._queue_declare()[0])
            return self._depth[1]

    def _queue_declare(self) -> tuple[int, int]:
        """(messages ready, consumers) of the tasks' queue; (0, 0) if the broker does not have it."""
        from amqp.exceptions import NotFound

        try:
            with self.app.connection_for_read() as connection:
                try:
                    _, ready, consumers = connection.default_channel.queue_declare(
                        queue=live_settings.QUEUE, passive=True
                    )
                except NotFound:  # never declared, or lost with the broker's state
                    return 0, 0
                return int(ready), int(consumers)
        except BROKER_ERRORS as exc:
            raise JobQueueUnreachable(str(exc)) from exc

    def delete_records(self, task_ids: list[str]) -> None:
        if task_ids:
            redisclients.rq_connection().delete(*(_record_key(task_id) for task_id in task_ids))

    def health(self) -> dict[str, Any]:
        ready, consumers = self._queue_declare()
        return {"ok": True, "queued_jobs": ready, "workers": consumers}

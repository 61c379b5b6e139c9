"""The events behind the Prometheus metrics, counted in Redis so that every process adds to one count.

Web processes, daphnes, the scheduler and workers run on several hosts, and RQ forks a work horse
per job that lives only as long as the job: a registry in each process would be lost with each
horse and would need every process scraped. So every event (a task finished, a push dropped, a 429)
is added to a hash in the job queue's Redis (HINCRBY, HINCRBYFLOAT; a histogram's buckets are
fields), and `live_tasks.metrics` reads the hashes at each scrape. What can be read from the
database or Redis at scrape time (tasks by kind and status, the safety net's age) is not counted
here at all.

Counting never slows or breaks the work: `count` and `observe` only add to a dict in this process,
under a lock. A daemon thread writes what has gathered to Redis once a second, in one MULTI/EXEC;
a work horse also writes at the end of its job (live_tasks/jobs.py: it exits without running
`atexit`), a process at its exit, and the metrics view before it reads, each waiting
FLUSH_TIMEOUT_SECONDS at most. A Redis error is logged once and the counts are kept for the next
try. After a fork, the child starts with nothing pending (its parent writes its own).

Each daphne also reports the number of live sockets it holds, with the time of the report; the
scrape ignores (and removes) a report older than SOCKETS_STALE_AFTER_SECONDS, a killed daphne's.

Imports nothing of prometheus_client: counting works whether or not the endpoint is installed.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from . import redisclients

logger = logging.getLogger(__name__)

KEY_PREFIX = "live_tasks:metrics"
COUNTERS_KEY = f"{KEY_PREFIX}:counters"
HISTOGRAMS_KEY = f"{KEY_PREFIX}:histograms"
SOCKETS_KEY = f"{KEY_PREFIX}:sockets-open"

FLUSH_INTERVAL_SECONDS = 1.0
# The longest a job's end, a scrape or an exit waits for its counts to be written.
FLUSH_TIMEOUT_SECONDS = 0.5
SOCKETS_STALE_AFTER_SECONDS = 15.0

# Seconds. A task runs from a fraction of a second (a small export) to its kind's timeout (15 min
# for an export, 30 for an import); a job waits milliseconds on an idle queue, minutes behind a backlog.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0)
QUEUE_WAIT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


@dataclass(frozen=True)
class Metric:
    name: str  # as exposed; a counter's without its "_total"
    type: str  # "counter" or "histogram"
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric("live_tasks_tasks_enqueued", "counter", "Tasks launched (their job put on the queue).", ("kind",)),
        Metric("live_tasks_tasks_started", "counter", "Tasks started by a worker.", ("kind",)),
        Metric("live_tasks_tasks_finished", "counter", "Tasks ended, by final status.", ("kind", "status")),
        Metric(
            "live_tasks_task_duration_seconds",
            "histogram",
            "From start to end of a task that started (finished_at - started_at), by final status.",
            ("kind", "status"),
            DURATION_BUCKETS,
        ),
        Metric(
            "live_tasks_task_queue_wait_seconds",
            "histogram",
            "From launch to start of a task (started_at - created_at).",
            ("kind",),
            QUEUE_WAIT_BUCKETS,
        ),
        Metric(
            "live_tasks_pushes",
            "counter",
            "Live messages handed to the channel layer, by message type and outcome (sent, dropped).",
            ("type", "outcome"),
        ),
        Metric(
            "live_tasks_socket_revocations",
            "counter",
            "Orders to live sockets that their authority may have ended (logout; recheck: password, "
            "deactivation, deletion, lost staff).",
            ("reason",),
        ),
        Metric(
            "live_tasks_sockets_closed",
            "counter",
            "Live sockets closed by the server: revoked (4401 after a check), evicted (4429, past the "
            "per-user cap), anonymous (4401 at the handshake), check_failed (1011: the session could not be "
            "checked, e.g. the database was away).",
            ("reason",),
        ),
        Metric("live_tasks_safety_net_passes", "counter", "Completed safety-net passes."),
        Metric(
            "live_tasks_safety_net_actions",
            "counter",
            "What the safety net did to tasks (requeued, failed as lost, cleaned up...).",
            ("action",),
        ),
        Metric(
            "live_tasks_rate_limited", "counter", "Requests refused by a rate limit (HTTP 429), by limit.", ("limit",)
        ),
        Metric(
            "live_tasks_storage_errors",
            "counter",
            "Errors raised by the result storage (Django's default storage), by operation.",
            ("operation",),
        ),
    )
}


def _field(name: str, label_values: list[str], part: str = "") -> str:
    return json.dumps([name, label_values, part], separators=(",", ":"))


def parse_field(field: str) -> tuple[str, list[str], str]:
    name, label_values, part = json.loads(field)
    return str(name), [str(value) for value in label_values], str(part)


def _label_values(metric: Metric, labels: dict[str, Any]) -> list[str]:
    if set(labels) != set(metric.labels):
        raise ValueError(f"{metric.name} takes the labels {metric.labels}, not {tuple(labels)}")
    return [str(labels[label]) for label in metric.labels]


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class _Recorder:
    def __init__(self) -> None:
        self._reset()
        self._atexit_registered = False

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], int | float] = {}
        self._sockets: int | None = None  # None: this process has never held a live socket
        self._thread_pid: int | None = None
        self._failing = False

    def add(self, key: str, field: str, amount: int | float) -> None:
        with self._lock:
            self._pending[(key, field)] = self._pending.get((key, field), 0) + amount
        self._ensure_flusher()

    def sockets_add(self, delta: int) -> None:
        with self._lock:
            self._sockets = max(0, (self._sockets or 0) + delta)
        self._ensure_flusher()

    def _ensure_flusher(self) -> None:
        if self._thread_pid == os.getpid():
            return
        with self._lock:
            if self._thread_pid == os.getpid():
                return
            self._thread_pid = os.getpid()
            threading.Thread(target=self._flush_forever, name="live-tasks-metrics", daemon=True).start()
            if not self._atexit_registered:
                self._atexit_registered = True
                atexit.register(self._at_exit)

    def _flush_forever(self) -> None:
        pid = os.getpid()
        while pid == os.getpid():
            time.sleep(FLUSH_INTERVAL_SECONDS)
            self._write()

    def flush(self, timeout: float | None = None) -> None:
        """Write what this process counted to Redis now; never raises. With `timeout`, wait at most
        that long: redis-py retries a refused connection with backoff for seconds, which a job or a
        scrape must not wait out (the write goes on in the background, its counts kept if it fails)."""
        if timeout is None:
            return self._write()
        writer = threading.Thread(target=self._write, name="live-tasks-metrics-flush", daemon=True)
        try:
            writer.start()
        except RuntimeError:  # at interpreter shutdown (atexit, Python 3.12+), no new thread may start
            return self._write()
        writer.join(timeout)
        return None

    def _write(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            sockets = self._sockets
        if not pending and sockets is None:
            return
        try:
            client = redisclients.rq_connection()
            with client.pipeline(transaction=True) as pipe:
                for (key, field), amount in pending.items():
                    if isinstance(amount, int):
                        pipe.hincrby(key, field, amount)
                    else:
                        pipe.hincrbyfloat(key, field, amount)
                if sockets is not None:
                    pipe.hset(SOCKETS_KEY, process_name(), f"{sockets} {time.time():.3f}")
                pipe.execute()
        except Exception as exc:
            with self._lock:  # kept for the next try: a few fields, whatever the length of the outage
                for entry, amount in pending.items():
                    self._pending[entry] = self._pending.get(entry, 0) + amount
            if not self._failing:
                self._failing = True
                logger.warning("Metrics could not be written to Redis (%r); they are kept and retried", exc)
            return
        if self._failing:
            self._failing = False
            logger.info("Metrics are being written to Redis again")

    def _at_exit(self) -> None:
        self.flush(timeout=FLUSH_TIMEOUT_SECONDS)
        if self._sockets is not None:
            try:
                redisclients.rq_connection().hdel(SOCKETS_KEY, process_name())
            except Exception as exc:  # the process is ending: say so and go
                logger.debug("Could not remove this process's socket count: %r", exc)

    def _after_fork_in_child(self) -> None:
        # The parent writes what it had pending; the child counts only its own events, and starts
        # its own flusher on its first one.
        self._reset()


_recorder = _Recorder()
os.register_at_fork(after_in_child=_recorder._after_fork_in_child)


def count(name: str, amount: int = 1, **labels: Any) -> None:
    """Add `amount` to the counter `name` (without its _total) with these labels."""
    metric = METRICS[name]
    _recorder.add(COUNTERS_KEY, _field(name, _label_values(metric, labels)), amount)


def observe(name: str, value: float, **labels: Any) -> None:
    """One observation of the histogram `name`: its bucket, its count and its sum."""
    metric = METRICS[name]
    values = _label_values(metric, labels)
    bucket = next((str(le) for le in metric.buckets if value <= le), "+Inf")
    _recorder.add(HISTOGRAMS_KEY, _field(name, values, bucket), 1)
    _recorder.add(HISTOGRAMS_KEY, _field(name, values, "count"), 1)
    _recorder.add(HISTOGRAMS_KEY, _field(name, values, "sum"), float(value))


def socket_opened() -> None:
    _recorder.sockets_add(1)


def socket_closed() -> None:
    _recorder.sockets_add(-1)


def flush(timeout: float | None = FLUSH_TIMEOUT_SECONDS) -> None:
    """Write this process's counts now (the end of a job, before a scrape), waiting at most
    `timeout` seconds (None: until written or failed). Never raises."""
    _recorder.flush(timeout)


# --- Receivers of the library's own signals (connected in LiveTasksConfig.ready) -------------


def on_task_enqueued(sender: Any, task: Any, **kwargs: Any) -> None:
    count("live_tasks_tasks_enqueued", kind=task.kind)


def on_task_started(sender: Any, task: Any, **kwargs: Any) -> None:
    count("live_tasks_tasks_started", kind=task.kind)
    if task.started_at is not None and task.created_at is not None:
        # Two hosts' clocks: a small skew could make it negative.
        wait = max(0.0, (task.started_at - task.created_at).total_seconds())
        observe("live_tasks_task_queue_wait_seconds", wait, kind=task.kind)


def on_task_finished(sender: Any, task: Any, status: str, **kwargs: Any) -> None:
    count("live_tasks_tasks_finished", kind=task.kind, status=status)
    if task.started_at is not None and task.finished_at is not None:
        duration = max(0.0, (task.finished_at - task.started_at).total_seconds())
        observe("live_tasks_task_duration_seconds", duration, kind=task.kind, status=status)

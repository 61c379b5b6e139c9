"""The benchmarks' Celery app, as a site has its own (tests/library/celery_app.py): configured from
the bench settings' CELERY_* names. Its worker: `celery -A benchmarks.celery_app worker -Q
live-tasks-bench` (benchmarks/common.py `celery_worker`), a queue no other worker on the broker reads.

Also, for the benchmarks only: the no-op task of the burst's throughput floor, and with
BENCH_CELERY_TIMINGS set, the phases of each job timed in the pool child, as
benchmarks/timed_worker.py times them in an RQ work horse (benchmarks/overhead.py).
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery  # type: ignore[import-untyped,unused-ignore]
from celery.signals import task_postrun, task_prerun, task_received, worker_process_init

app = Celery(__package__ or "benchmarks")
app.config_from_object("django.conf:settings", namespace="CELERY")
NOOP_COUNTER = "bench:celery-noop-done"


@app.task(name="benchmarks.noop", ignore_result=True, acks_late=True)
def noop() -> None:
    """The no-op job of the burst's throughput floor: it only counts itself done, in Redis db 12."""
    from live_tasks import redisclients

    redisclients.rq_connection().incr(NOOP_COUNTER)


if os.environ.get("BENCH_CELERY_TIMINGS"):
    _began: dict[str, float] = {}

    @task_received.connect
    def _received(request: Any, **kwargs: Any) -> None:  # in the worker's main process
        from benchmarks.timed_worker import record

        record(job=request.id, event="received", t=time.time())

    @worker_process_init.connect
    def _instrument(**kwargs: Any) -> None:  # in each pool child, once forked
        import live_tasks.queue.celery as job
        from benchmarks.timed_worker import TimedWorker, instrument

        instrument()
        for owner, name, phase in [
            (job._Heartbeat, "start", "the job record and its heartbeat thread"),
            (job._Heartbeat, "stop", "the job record and its heartbeat thread"),
            (job, "_record_end", "the job record and its heartbeat thread"),
        ]:
            setattr(owner, name, TimedWorker.timed(getattr(owner, name), phase))

    @task_prerun.connect
    def _prerun(task_id: str, **kwargs: Any) -> None:
        from benchmarks.timed_worker import TimedWorker, record

        TimedWorker.phases.clear()  # the child runs job after job: each job's own phases
        _began[task_id] = time.time()
        record(job=task_id, event="prerun", t=_began[task_id])

    @task_postrun.connect
    def _postrun(task_id: str, **kwargs: Any) -> None:
        from benchmarks.timed_worker import TimedWorker, record

        began = _began.pop(task_id, time.time())
        record(job=task_id, event="postrun", t=time.time(), began=began, phases=dict(TimedWorker.phases))

"""The project's worker class with each phase of a job timed, for benchmarks/overhead.py only.

Each event and the horse's phase totals are appended to TIMINGS as JSON lines (parent and horse).
`instrument` patches the same phases into a Celery pool child (benchmarks/celery_app.py).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from functools import wraps

from benchmarks.common import OUT
from live_tasks.worker import TaskWorker  # this module is imported by rqworker, once Django is set up

TIMINGS = OUT / "overhead-timings.jsonl"


def record(**fields) -> None:
    with open(TIMINGS, "a") as out:  # one short append per line: lines of two processes never mix
        out.write(json.dumps(fields) + "\n")


def instrument() -> None:
    """Time the job's phases in this process (an RQ worker, whose horses inherit it; a Celery pool child)."""
    import django.db.backends.base.base as db

    import exports.services as export
    import live_tasks.files as files
    import live_tasks.state as state

    for owner, name, phase in [
        (db.BaseDatabaseWrapper, "connect", "database connection"),
        (state, "_update", "transitions: UPDATE"),
        (state, "_publish_and_signal", "transitions: read and push"),  # and signal: no receivers here
        (export, "write_posts_json", "writing"),
        (files, "result_store", "storing"),  # on the local disk; into a bucket, storing is writing
        (export, "export_email_send", "emailing"),
    ]:
        setattr(owner, name, TimedWorker.timed(getattr(owner, name), phase))


class TimedWorker(TaskWorker):
    """The project's worker, with each phase of a job timed (benchmark only)."""

    phases: dict[str, float] = defaultdict(float)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        instrument()

    @classmethod
    def timed(cls, function, phase: str):
        @wraps(function)
        def wrapper(*args, **kwargs):
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                cls.phases[phase] += time.perf_counter() - began

        return wrapper

    def fork_work_horse(self, job, queue):
        record(job=job.id, event="fork", t=time.time())
        return super().fork_work_horse(job, queue)

    def main_work_horse(self, job, queue):
        record(job=job.id, event="horse", t=time.time())
        return super().main_work_horse(job, queue)

    def perform_job(self, job, queue, execution):
        began = time.time()
        try:
            return super().perform_job(job, queue, execution)
        finally:
            record(job=job.id, event="horse done", t=time.time(), began=began, phases=dict(self.phases))

    def monitor_work_horse(self, job, queue, execution):
        super().monitor_work_horse(job, queue, execution)
        record(job=job.id, event="reaped", t=time.time())

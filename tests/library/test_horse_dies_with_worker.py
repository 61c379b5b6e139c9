"""A work horse never outlives its worker: the kernel kills it with the worker (PR_SET_PDEATHSIG),
and, where that cannot help, its own progress reporter does at the next report."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
import pytest

from live_tasks.errors import worker_lost_error
from live_tasks.queue import task_job_enqueue

from .helpers import (
    CEILING,
    HORSE_GONE_BOUND_SECONDS,
    ROOT,
    WORKER_LOST_BOUND_SECONDS,
    TaskFactory,
    child_env,
    gone,
    scheduler,
    wait_for_task,
    wait_until,
    worker,
)
from .testapp.kinds import TEST_STEPS, test_steps

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_horse_that_reports_no_progress_dies_with_its_worker(queue):
    # One long step: the horse sleeps, so only the kernel can end it when its worker dies.
    task = TaskFactory(kind=TEST_STEPS, params={"steps": 1, "step_seconds": 600})
    env = child_env()
    with scheduler(env, name="scheduler-silent-horse"), worker(env, name="worker-silent-horse") as doomed:
        task_job_enqueue(str(task.id), kind=test_steps)
        wait_for_task(task.id, lambda t: t.status == "running", CEILING)
        (horse,) = psutil.Process(doomed.pid).children()

        doomed.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        wait_until(lambda: gone(horse), CEILING, 0.05)
        horse_gone_after = time.monotonic() - killed_at
        ended = wait_for_task(task.id, lambda t: t.is_finished and not t.needs_cleanup, CEILING)
        took = time.monotonic() - killed_at
    assert horse_gone_after < HORSE_GONE_BOUND_SECONDS, f"the horse outlived its worker by {horse_gone_after:.1f}s"
    assert (ended.status, ended.error) == ("failed", worker_lost_error("Test steps"))
    assert took < WORKER_LOST_BOUND_SECONDS


# A process that forks a "horse" which reports progress, then dies at once. The horse was told
# its worker's pid but never set PR_SET_PDEATHSIG: as on a system without prctl, or a worker
# killed before its horse ran prctl.
ORPHAN = """
import os, sys, time, django
django.setup()
from live_tasks.reporter import ProgressReporter, progress_watch_worker
worker_pid = os.getpid()
horse = os.fork()
if horse:
    print(horse, flush=True)
    os._exit(0)
devnull = os.open(os.devnull, os.O_WRONLY)
os.dup2(devnull, 1), os.dup2(devnull, 2)  # the test reads the worker's output only
time.sleep(0.5)  # the worker is gone by now
reporter = ProgressReporter("not-a-task", interval=3600)  # no writes: the check is not throttled
progress_watch_worker(worker_pid)
for done in range(10**9):
    reporter(done, 10**9, detail="working")
    time.sleep(0.01)
"""


def test_a_horse_without_pdeathsig_ends_at_its_next_progress_report():
    result = subprocess.run(
        [sys.executable, "-c", ORPHAN], cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=60
    )
    horse = psutil.Process(int(result.stdout))
    try:
        wait_until(lambda: gone(horse), 20, 0.05)
    finally:
        if not gone(horse):
            horse.kill()

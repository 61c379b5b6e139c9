"""Faults injected into real processes: each must end in an honest state that the user sees."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import psutil
import pytest

from exports.services import export_start
from live_tasks import files
from live_tasks.errors import worker_lost_error
from live_tasks.models import Task
from live_tasks.queue.rq import default_queue, task_job_fetch
from live_tasks.state import task_mark_cancelled
from posts.services import posts_seed
from tests.factories import PostFactory, UserFactory, session_cookie_for
from tests.library.helpers import WORKER_LOST_BOUND_SECONDS
from tests.live import LiveFeed
from tests.processes import (
    CEILING,
    HttpSession,
    RedisServer,
    StalledServer,
    child_env,
    daphne,
    free_port,
    run_burst_worker,
    scheduler,
    wait_for_log,
    wait_for_task,
    worker,
)

WORKER_LOST = worker_lost_error("Posts export")

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Tests wait for the end itself with a generous ceiling, then check the measured time against
# WORKER_LOST_BOUND_SECONDS (tests/library/helpers.py says why it is what it is).


def test_a_worker_killed_mid_export_ends_its_task_and_the_next_export_works(smtp_server):
    user = UserFactory()
    PostFactory.create_batch(50, author=user)
    task = export_start(user=user)

    healthy = child_env(EMAIL_URL=smtp_server.url)
    with StalledServer() as hung_smtp, scheduler(healthy):  # the safety net runs before the kill
        env = child_env(EMAIL_URL=hung_smtp.url, EMAIL_TIMEOUT="300")
        with worker(env, name="worker-to-kill") as doomed:
            wait_for_task(task.id, lambda t: t.status == "running" and t.detail.startswith("Emailing"), CEILING)
            # The whole worker, as when its container or machine dies: the parent and its work
            # horse (which RQ puts in a session of its own, out of reach of killpg).
            family = [doomed_process := psutil.Process(doomed.pid), *doomed_process.children(recursive=True)]
            assert len(family) == 2, "the worker and its work horse"
            for process in family:
                process.send_signal(signal.SIGKILL)
            doomed.wait(10)
            psutil.wait_procs(family, timeout=10)
            killed_at = time.monotonic()

        lost = wait_for_task(task.id, lambda t: t.is_finished, CEILING)
        took = time.monotonic() - killed_at
        assert lost.status == Task.Status.FAILED
        assert lost.error == WORKER_LOST
        assert not lost.file
        assert took < WORKER_LOST_BOUND_SECONDS, f"ended {took:.1f}s after the kill"

        with worker(healthy, name="worker-after-kill"):
            again = export_start(user=user)
            done = wait_for_task(again.id, lambda t: t.is_finished, CEILING)
    assert done.status == Task.Status.SUCCEEDED
    assert len(smtp_server.messages) == 1, "only the second export emailed"


def test_redis_stopped_while_queued_then_started_again(smtp_server):
    waiting_user, late_user = UserFactory(), UserFactory()
    PostFactory.create_batch(5, author=waiting_user)
    with RedisServer() as redis_server:
        env = child_env(
            REDIS_URL=redis_server.url,
            EMAIL_URL=smtp_server.url,
            TASK_QUEUED_GRACE_SECONDS="1",
            TASK_RECONCILE_INTERVAL_SECONDS="1",
        )
        with daphne(env) as (port, _):
            waiting = HttpSession(port, session_cookie_for(waiting_user))
            late = HttpSession(port, session_cookie_for(late_user))
            status, body = waiting.request("POST", "/exports/", json_client=True)
            assert status == 202
            task_id = json.loads(body)["id"]

            redis_server.stop()

            # Pages that do not need Redis keep answering.
            assert waiting.request("GET", "/exports/")[0] == 200
            status, body = waiting.request("GET", f"/api/tasks/{task_id}/")
            assert status == 200 and json.loads(body)["status"] == "queued"
            # Launching needs Redis: a clear 503, and no task row left behind.
            status, body = late.request("POST", "/exports/", json_client=True)
            assert status == 503 and "unavailable" in json.loads(body)["error"]
            status, body = late.request("POST", "/exports/")
            assert status == 503 and b"background service is unavailable" in body
            assert not Task.objects.filter(user=late_user).exists()

            redis_server.start()  # empty: this Redis keeps nothing on disk, so the job is gone
            with scheduler(env), worker(env):
                done = wait_for_task(task_id, lambda t: t.is_finished, 60)
            assert done.status == Task.Status.SUCCEEDED
            assert len(smtp_server.messages) == 1
            status, body = late.request("POST", "/exports/", json_client=True)
            assert status == 202, "launching works again once Redis is back"


def test_a_failing_channel_layer_does_not_hurt_the_export(queue, smtp_server):
    user = UserFactory()
    PostFactory.create_batch(3000, author=user)
    task = export_start(user=user)
    assert queue.job_ids == [str(task.id)], "the job waits in the queue for the worker below"

    dead_layer = f"redis://127.0.0.1:{free_port()}/0"  # the layer's Redis refuses connections
    result = run_burst_worker(
        child_env(CHANNEL_LAYER_REDIS_URL=dead_layer, EMAIL_URL=smtp_server.url, EXPORT_CHUNK_SIZE="100")
    )
    assert result.returncode == 0, result.stdout + result.stderr

    task.refresh_from_db()
    assert task.status == Task.Status.SUCCEEDED and task.progress == 100, result.stdout + result.stderr
    assert json.loads(task.file.open("rb").read())["count"] == 3000
    assert len(smtp_server.messages) == 1
    log = result.stdout + result.stderr
    assert log.count("Live updates are not being delivered") == 1, "logged once, not once per update"

    with LiveFeed(user) as feed:  # a page that reconnects now sees the final state
        feed.wait_for(lambda m: m["type"] == "snapshot")
    (snapshot,) = [m for m in feed.messages if m["type"] == "snapshot"]
    (shown,) = [t for t in snapshot["tasks"] if t["id"] == str(task.id)]
    assert shown["status"] == "succeeded" and shown["download_url"]


def test_a_work_horse_killed_alone_fails_its_task_at_once_and_the_worker_goes_on(smtp_server):
    user = UserFactory()
    task = export_start(user=user)
    with StalledServer() as hung_smtp:
        env = child_env(EMAIL_URL=hung_smtp.url, EMAIL_TIMEOUT="300")
        with worker(env, name="worker-losing-horse") as survivor:
            wait_for_task(task.id, lambda t: t.status == "running" and t.detail.startswith("Emailing"), CEILING)
            (horse,) = psutil.Process(survivor.pid).children(recursive=True)
            horse.send_signal(signal.SIGKILL)  # as the kernel's OOM killer would
            killed_at = time.monotonic()
            lost = wait_for_task(task.id, lambda t: t.is_finished, CEILING)
            took = time.monotonic() - killed_at
            assert took < 10, f"no scheduler needed: the worker itself ends the task (took {took:.1f}s)"
            assert lost.status == Task.Status.FAILED and lost.error == WORKER_LOST
            assert survivor.poll() is None, "the worker survives its work horse"


def test_a_running_export_cancelled_without_a_stop_command_stops_by_itself(smtp_server):
    # As if RQ's stop-job command never reached the worker: only the row says "cancelled".
    user = UserFactory()
    posts_seed(author=user, count=200_000)
    task = export_start(user=user)
    env = child_env(EMAIL_URL=smtp_server.url, EXPORT_CHUNK_SIZE="100", TASK_PROGRESS_INTERVAL="0.01")
    with worker(env, name="worker-cooperative-stop"):
        wait_for_task(task.id, lambda t: t.status == "running" and 0 < t.progress < 50, CEILING)
        assert task_mark_cancelled(task.id)
        wait_for_log(Path(env["TEST_OUTPUT_DIR"]) / "worker-cooperative-stop.log", "was ended while running")
    task.refresh_from_db()
    assert task.progress < 100 and not task.file
    assert smtp_server.messages == []
    assert not files.work_path(task.id).exists()


def test_cancelling_a_running_export_stops_its_work_horse():
    user = UserFactory()
    PostFactory.create_batch(50, author=user)
    # The mail server never answers: the job is surely still running when the cancel arrives, and
    # only RQ's stop-job command (which kills the work horse) can end it.
    with StalledServer() as hung_smtp:
        env = child_env(EMAIL_URL=hung_smtp.url, EMAIL_TIMEOUT="300")
        with daphne(env) as (port, _), worker(env, name="worker-stop-job") as running_worker:
            session = HttpSession(port, session_cookie_for(user))
            status, body = session.request("POST", "/exports/", json_client=True)
            task_id = json.loads(body)["id"]
            wait_for_task(task_id, lambda t: t.status == "running" and t.detail.startswith("Emailing"), CEILING)
            (horse,) = psutil.Process(running_worker.pid).children(recursive=True)

            status, body = session.request("POST", f"/exports/{task_id}/cancel/", json_client=True)
            assert status == 200 and json.loads(body)["status"] == "cancelled"
            horse.wait(CEILING)  # killed by the worker on RQ's stop-job command, not left to hang
            wait_for_log(Path(env["TEST_OUTPUT_DIR"]) / "worker-stop-job.log", "stopped by user")
            assert running_worker.poll() is None, "the worker itself goes on"

    task = Task.objects.get(pk=task_id)
    assert task.status == Task.Status.CANCELLED and task.progress < 100 and not task.file
    assert not files.work_path(task_id).exists(), "the partial file is deleted"
    # A cancel is not a failure: no record is left in RQ's failed registry (it kept them a year).
    assert task_job_fetch(task_id) is None
    assert task_id not in default_queue().failed_job_registry.get_job_ids()

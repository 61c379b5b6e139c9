"""The scheduler and the safety net under faults, on real processes.

- the scheduler survives a Redis outage (longer than every retry and timeout in the stack) and
  resumes by itself; /healthz reports the age of the safety net's last pass, turns 503 when it
  is too old (the scheduler stopped), and healthy again once passes resume;
- the safety net keeps its 30 s bound for a killed worker while the other worker is busy and
  the queue holds a backlog of long jobs: it runs in the scheduler, not in the job queue;
- after Redis comes back, the first message a process publishes is not lost.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psutil
import pytest
import redis

from exports.services import export_start
from live_tasks.errors import worker_lost_error
from live_tasks.models import Task
from live_tasks.scheduler import SAFETY_NET_PASS_KEY
from tests.exports.test_faults import WORKER_LOST_BOUND_SECONDS
from tests.factories import PostFactory, UserFactory
from tests.processes import (
    CEILING,
    ROOT,
    RedisServer,
    StalledServer,
    child_env,
    daphne,
    scheduler,
    wait_for_task,
    wait_until,
    worker,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

OUTAGE_SECONDS = 15


def healthz(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_scheduler_survives_a_redis_outage_and_healthz_tracks_the_safety_net():
    with RedisServer() as redis_server:
        env = child_env(
            REDIS_URL=redis_server.url, TASK_RECONCILE_INTERVAL_SECONDS="1", TASK_SAFETY_NET_MAX_AGE_SECONDS="5"
        )
        private = redis.Redis.from_url(redis_server.url)
        with daphne(env) as (port, _):
            with scheduler(env, name="scheduler-outage") as scheduler_process:
                wait_until(lambda: healthz(port)[0] == 200, 20)
                status, body = healthz(port)
                assert body["safety_net"]["ok"] and body["safety_net"]["last_pass_age_seconds"] <= 5

                redis_server.stop()
                time.sleep(OUTAGE_SECONDS)
                assert scheduler_process.poll() is None, "the scheduler outlives the outage"
                assert healthz(port)[0] == 503

                redis_server.start()  # empty: the last-pass record is gone with the old data
                restarted_at = time.monotonic()
                wait_until(lambda: private.get(SAFETY_NET_PASS_KEY), CEILING)
                assert time.monotonic() - restarted_at < 10, "resumed by itself within a few retries"
                wait_until(lambda: healthz(port)[0] == 200, 10)

            # The scheduler stopped (crashed, never restarted): /healthz says so once the last
            # pass is older than TASK_SAFETY_NET_MAX_AGE_SECONDS.
            stopped_at = time.monotonic()
            status, body = wait_until(lambda: (r := healthz(port))[0] == 503 and r, CEILING)
            assert time.monotonic() - stopped_at < 5 + 3
            assert body["safety_net"]["ok"] is False and body["safety_net"]["last_pass_age_seconds"] > 5
            assert body["database"]["ok"] and body["queue"]["ok"], "only the safety net is stale"


def test_the_safety_net_keeps_its_bound_with_a_backlog_and_a_busy_worker():
    """Worker A is killed mid-export and not restarted; worker B is stuck on a long export; three
    more exports wait in the queue. The killed task still ends within the documented 30 s."""
    users = [UserFactory() for _ in range(5)]
    for user in users:
        PostFactory.create_batch(5, author=user)
    lost, busy, *backlog = [export_start(user=user) for user in users]

    with StalledServer() as hung_smtp:  # every export hangs at its email: long jobs
        env = child_env(EMAIL_URL=hung_smtp.url, EMAIL_TIMEOUT="300")
        with scheduler(env, name="scheduler-backlog"), worker(env, name="worker-a-to-kill") as worker_a:
            wait_for_task(lost.id, lambda t: t.status == "running" and t.detail.startswith("Emailing"), CEILING)
            with worker(env, name="worker-b-busy") as worker_b:
                wait_for_task(busy.id, lambda t: t.status == "running" and t.detail.startswith("Emailing"), CEILING)
                family = [parent := psutil.Process(worker_a.pid), *parent.children(recursive=True)]
                for process in family:
                    process.send_signal(signal.SIGKILL)
                psutil.wait_procs(family, timeout=10)
                killed_at = time.monotonic()

                ended = wait_for_task(lost.id, lambda t: t.is_finished, CEILING)
                took = time.monotonic() - killed_at
                # Meanwhile worker B is still busy and the backlog still waits.
                assert worker_b.poll() is None
                assert Task.objects.get(pk=busy.id).status == "running"
                assert [Task.objects.get(pk=t.id).status for t in backlog] == ["queued"] * 3
    assert ended.status == Task.Status.FAILED and ended.error == worker_lost_error("Posts export")
    assert took < WORKER_LOST_BOUND_SECONDS, took


PUBLISHER = """
import sys, django
django.setup()
from live_tasks.push.publish import publish_task_update
for line in sys.stdin:
    ok = publish_task_update(user_id=7, task={"id": line.strip()}, wait=True)
    print("published" if ok else "lost", flush=True)
"""


def test_the_first_message_after_redis_returns_is_not_lost():
    with RedisServer() as redis_server:
        env = child_env(REDIS_URL=redis_server.url)
        publisher = subprocess.Popen(
            [sys.executable, "-c", PUBLISHER],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert publisher.stdin is not None and publisher.stdout is not None
        try:

            def publish(task_id: str) -> str:
                assert publisher.stdin is not None and publisher.stdout is not None
                publisher.stdin.write(task_id + "\n")
                publisher.stdin.flush()
                while line := publisher.stdout.readline():
                    if line.strip() in ("published", "lost"):
                        return line.strip()
                raise AssertionError("the publisher exited")

            assert publish("before") == "published"  # its connection to the layer is open now
            redis_server.stop()
            redis_server.start()

            listener = redis.Redis.from_url(redis_server.url).pubsub()
            listener.psubscribe("*")
            listener.get_message(timeout=5)  # the subscription's confirmation
            assert publish("after-restart") == "published", "retried once on a fresh connection"
            message = listener.get_message(timeout=5)
            assert message is not None and b"after-restart" in message["data"]
        finally:
            publisher.stdin.close()
            publisher.wait(10)
        output = publisher.stdout.read()
        assert "Live updates are not being delivered" not in output, output

"""GET /healthz against the real services, and against a Redis that is not there."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from django.test import Client

from live_tasks.scheduler import record_safety_net_pass
from tests.processes import RedisServer, child_env, daphne, email_worker, wait_until, worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_healthz_reports_every_dependency_and_the_queue(queue, email_queue):
    queue.enqueue("live_tasks.services.tasks_expire")
    for _ in range(2):
        email_queue.enqueue("accounts.jobs.send_welcome_email_job", 0)
    record_safety_net_pass()  # as the scheduler does after each pass
    response = Client().get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True}
    assert body["channel_layer"] == {"ok": True}
    assert body["queue"] == {"ok": True, "queued_jobs": 1, "workers": 0, "email": {"queued_jobs": 2, "workers": 0}}
    assert body["safety_net"]["ok"] is True and 0 <= body["safety_net"]["last_pass_age_seconds"] < 5
    assert body["safety_net"]["max_age_seconds"] == 60
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.slow
def test_healthz_counts_live_workers_and_turns_503_when_redis_goes_away():
    with RedisServer() as redis_server:
        env = child_env(REDIS_URL=redis_server.url)
        with daphne(env) as (port, _), worker(env), email_worker(env):

            def get() -> tuple[int, dict]:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
                        return r.status, json.loads(r.read())
                except urllib.error.HTTPError as err:
                    return err.code, json.loads(err.read())

            def both_listening() -> bool:
                figures = get()[1]["queue"]
                return figures.get("workers", 0) >= 1 and figures["email"]["workers"] == 1

            wait_until(both_listening, 30, interval=0.2)
            # Counted per queue: the email worker takes no task, so it is not counted as a task worker.
            assert get()[1]["queue"]["workers"] == 1

            redis_server.stop()
            status, body = get()
            assert status == 503
            assert body["status"] == "unavailable"
            assert body["database"] == {"ok": True}
            assert body["queue"]["ok"] is False and body["channel_layer"]["ok"] is False


def test_healthz_turns_503_without_a_recent_safety_net_pass(queue, settings):
    body = Client().get("/healthz").json()
    assert body["status"] == "unavailable", "no scheduler has ever run a pass"
    assert body["safety_net"] == {"ok": False, "last_pass_age_seconds": None, "max_age_seconds": 60}

    record_safety_net_pass()
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "SAFETY_NET_MAX_AGE_SECONDS": 0}
    time.sleep(0.2)
    response = Client().get("/healthz")
    assert response.status_code == 503 and response.json()["safety_net"]["ok"] is False


def test_healthz_needs_no_login_and_reveals_nothing_private(user, queue):
    record_safety_net_pass()
    assert Client().get("/healthz").status_code == 200
    assert set(Client().get("/healthz").json()) == {"status", "database", "queue", "channel_layer", "safety_net"}

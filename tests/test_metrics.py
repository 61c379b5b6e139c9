"""The Prometheus endpoint (live_tasks.metrics) on real Redis and a real database: it is shut without
its token, and a scrape shows what happened in any process: tasks by kind and status, durations
and queue waits, pushes, sockets, 429s by limit, storage errors, the safety net's passes and age,
and django-rq's own queue metrics. The Grafana dashboard in docs/ uses only metrics it shows."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import yaml
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from rq import SimpleWorker

from live_tasks import redisclients, stats
from live_tasks.models import Task
from live_tasks.scheduler import record_safety_net_pass, safety_net_pass
from live_tasks.services import task_start
from tests.factories import TaskFactory, UserFactory, signed_in_client
from tests.library.testapp.kinds import TEST_STEPS
from tests.live import LiveFeed
from tests.processes import ROOT, child_env, free_port, run_burst_worker, wait_until

TOKEN = "metrics-token-for-the-tests-0123456789abcdef"
URL = "/tasks/metrics/"
JSON: dict = {"HTTP_ACCEPT": "application/json"}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def metrics_on(settings, queue):
    """The token set, and no count left from an earlier test (flushed by this process, then wiped)."""
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "METRICS_TOKEN": TOKEN}
    stats.flush()
    queue.connection.flushdb()
    return queue


def scrape(client=None) -> Samples:
    from django.test import Client

    response = (client or Client()).get(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    samples: Samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def run_queued_jobs(queue) -> None:
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def test_the_endpoint_is_a_404_until_a_token_is_set_then_refuses_any_other_token(db, client, settings, queue):
    assert settings.LIVE_TASKS.get("METRICS_TOKEN") is None
    assert client.get(URL).status_code == 404
    assert client.get(URL, HTTP_AUTHORIZATION="Bearer ").status_code == 404

    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "METRICS_TOKEN": TOKEN}
    for header in (None, "", "Bearer ", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN):
        extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
        response = client.get(URL, **extra)
        assert response.status_code == 401, header
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert b"live_tasks_" not in response.content

    response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    assert client.post(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


@pytest.mark.django_db(transaction=True)
def test_a_task_run_by_a_worker_is_counted_by_kind_and_status_with_its_duration_and_queue_wait(metrics_on):
    queue = metrics_on
    user = UserFactory()
    task_start(user=user, kind=TEST_STEPS, params={"steps": 2, "step_seconds": 0.1})
    assert value(scrape(), "live_tasks_tasks", kind=TEST_STEPS, status="queued") == 1
    run_queued_jobs(queue)
    task_start(user=user, kind=TEST_STEPS, params={"steps": 3, "fail_at": 1})
    run_queued_jobs(queue)

    samples = scrape()
    assert value(samples, "live_tasks_tasks", kind=TEST_STEPS, status="succeeded") == 1
    assert value(samples, "live_tasks_tasks", kind=TEST_STEPS, status="failed") == 1
    assert value(samples, "live_tasks_tasks", kind=TEST_STEPS, status="queued") == 0
    assert value(samples, "live_tasks_tasks", kind="export_posts", status="running") == 0, "every kind, every status"
    assert value(samples, "live_tasks_tasks_enqueued_total", kind=TEST_STEPS) == 2
    assert value(samples, "live_tasks_tasks_started_total", kind=TEST_STEPS) == 2
    assert value(samples, "live_tasks_tasks_finished_total", kind=TEST_STEPS, status="succeeded") == 1
    assert value(samples, "live_tasks_tasks_finished_total", kind=TEST_STEPS, status="failed") == 1

    succeeded = {"kind": TEST_STEPS, "status": "succeeded"}
    assert value(samples, "live_tasks_task_duration_seconds_count", **succeeded) == 1
    duration = value(samples, "live_tasks_task_duration_seconds_sum", **succeeded)
    assert duration is not None and 0.2 <= duration < 10, "two steps of 0.1 s"
    assert value(samples, "live_tasks_task_duration_seconds_bucket", **succeeded, le="0.1") == 0
    assert value(samples, "live_tasks_task_duration_seconds_bucket", **succeeded, le="+Inf") == 1
    assert value(samples, "live_tasks_task_queue_wait_seconds_count", kind=TEST_STEPS) == 2
    wait = value(samples, "live_tasks_task_queue_wait_seconds_sum", kind=TEST_STEPS)
    assert wait is not None and 0 <= wait < 10
    assert value(samples, "live_tasks_task_queue_wait_seconds_bucket", kind=TEST_STEPS, le="600.0") == 2

    # Each state change was pushed (seq 0 at the launch, the start, progress, the end), none dropped.
    sent = value(samples, "live_tasks_pushes_total", type="task.update", outcome="sent")
    assert sent is not None and sent >= 6
    assert value(samples, "live_tasks_pushes_total", type="task.update", outcome="dropped") is None

    # django-rq's own collector, in the same scrape.
    assert value(samples, "rq_jobs", queue="default", status="queued") == 0
    assert value(samples, "rq_jobs", queue="default", status="failed") == 1
    assert value(samples, "rq_jobs", queue="email", status="queued") == 0
    for source in ("database", "redis", "rq"):
        assert value(samples, "live_tasks_metrics_source_up", source=source) == 1


@pytest.mark.django_db(transaction=True)
def test_the_oldest_queued_and_running_tasks_ages_are_shown(metrics_on):
    TaskFactory(kind=TEST_STEPS, status="queued", created_at=timezone.now() - timedelta(minutes=5))
    TaskFactory(kind=TEST_STEPS, status="running", started_at=timezone.now() - timedelta(minutes=2))
    samples = scrape()
    queued = value(samples, "live_tasks_oldest_task_age_seconds", kind=TEST_STEPS, status="queued")
    running = value(samples, "live_tasks_oldest_task_age_seconds", kind=TEST_STEPS, status="running")
    assert queued is not None and 299 <= queued < 330
    assert running is not None and 119 <= running < 150


def test_a_429_from_the_launch_limit_is_counted_by_limit(db, metrics_on, user, settings):
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "LAUNCH_LIMIT": 1}
    client = signed_in_client(user)
    assert client.post("/exports/", **JSON).status_code == 202
    assert value(scrape(), "live_tasks_rate_limited_total", limit="task-launch") is None
    assert client.post("/exports/", **JSON).status_code == 429
    assert client.post("/exports/", **JSON).status_code == 429
    assert value(scrape(), "live_tasks_rate_limited_total", limit="task-launch") == 2


@pytest.mark.django_db(transaction=True)
def test_open_sockets_are_shown_per_daphne_process_and_revocations_counted(metrics_on):
    user = UserFactory()
    process = stats.process_name()
    with LiveFeed(user) as first, LiveFeed(user) as second:
        for feed in (first, second):  # sent once the socket is counted (a handshake is accepted before)
            feed.wait_for(lambda m: m["type"] == "snapshot")
        assert value(scrape(), "live_tasks_sockets_open", process=process) == 2
        client = signed_in_client(user)
        client.post("/accounts/logout/")
    samples = scrape()
    assert value(samples, "live_tasks_sockets_open", process=process) == 0
    assert value(samples, "live_tasks_socket_revocations_total", reason="logout") == 1
    # (A first login may also re-hash the password, a change that orders a recheck.)
    orders = sum(v for (name, _), v in samples.items() if name == "live_tasks_socket_revocations_total")
    assert value(samples, "live_tasks_pushes_total", type="socket.revoke", outcome="sent") == orders

    # A daphne that stopped reporting (killed) is dropped from the scrape, and from Redis.
    stale = "gone-host:1234"
    metrics_on.connection.hset(stats.SOCKETS_KEY, stale, "7 1000.0")
    assert value(scrape(), "live_tasks_sockets_open", process=stale) is None
    assert not metrics_on.connection.hexists(stats.SOCKETS_KEY, stale)


@pytest.mark.django_db(transaction=True)
def test_a_storage_error_is_counted_by_operation(metrics_on, settings, tmp_path):
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("storage cannot write under a file")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": not_a_folder}},
    }
    task = task_start(user=UserFactory(), kind=TEST_STEPS, params={"steps": 1, "with_file": True})
    run_queued_jobs(metrics_on)
    task.refresh_from_db()
    assert task.status == "failed"
    assert value(scrape(), "live_tasks_storage_errors_total", operation="save") == 1


def test_the_safety_nets_passes_actions_and_age_are_shown(db, metrics_on):
    assert value(scrape(), "live_tasks_safety_net_last_pass_age_seconds") == math.inf, "no pass yet"
    assert value(scrape(), "live_tasks_safety_net_last_pass_timestamp_seconds") is None

    TaskFactory(kind=TEST_STEPS, status="queued", created_at=timezone.now() - timedelta(minutes=5))  # job lost
    assert safety_net_pass() == {"requeued": 1}
    record_safety_net_pass()
    samples = scrape()
    age = value(samples, "live_tasks_safety_net_last_pass_age_seconds")
    assert age is not None and 0 <= age < 5
    assert value(samples, "live_tasks_safety_net_passes_total") == 1
    assert value(samples, "live_tasks_safety_net_actions_total", action="requeued") == 1


def test_a_forked_child_never_writes_its_parents_counts_again(db, metrics_on):
    """RQ forks a work horse with whatever its worker had not written yet: only the worker writes that."""
    stats.count("live_tasks_rate_limited", limit="fork-test")
    child = os.fork()
    if child == 0:  # the child: one event of its own, written as a work horse does at its job's end
        try:
            stats.count("live_tasks_rate_limited", limit="fork-test")
            stats.flush()
        finally:
            os._exit(0)
    _, status = os.waitpid(child, 0)
    assert status == 0
    assert value(scrape(), "live_tasks_rate_limited_total", limit="fork-test") == 2


def test_what_a_process_counted_is_written_when_it_exits(db, metrics_on):
    """Written by the process's exit handler (no flush called): on Python 3.12 and later no thread may
    start then, and the write that ran in one was lost with a RuntimeError printed at exit."""
    code = "import django; django.setup(); from live_tasks import stats; stats.count(%r, limit='exit')"
    code %= "live_tasks_rate_limited"
    finished = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=child_env(), capture_output=True, text=True)
    assert finished.returncode == 0 and "Traceback" not in finished.stderr, finished.stderr
    assert value(scrape(), "live_tasks_rate_limited_total", limit="exit") == 1


def test_counting_goes_on_while_redis_is_away_and_catches_up_after(db, metrics_on, caplog):
    """A real client of a port where no Redis listens stands in for the process's one client."""
    real = redisclients.rq_connection()
    redisclients.rq_connection._value = Redis(port=free_port())
    try:
        stats.count("live_tasks_rate_limited", limit="outage")
        started = time.monotonic()
        stats.flush()  # as at a job's end: never raises, and waits half a second at most
        assert time.monotonic() - started < 1
        # redis-py retries with backoff for seconds before it gives up: wait for that here.
        wait_until(lambda: "Metrics could not be written to Redis" in caplog.text, timeout=20)
        stats.flush(timeout=None)
    finally:
        redisclients.rq_connection._value = real
    assert caplog.text.count("Metrics could not be written to Redis") == 1, "logged once per outage"
    wait_until(lambda: value(scrape(), "live_tasks_rate_limited_total", limit="outage") == 1, timeout=20)
    assert "Metrics are being written to Redis again" in caplog.text


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_events_of_two_processes_add_up_in_one_scrape(metrics_on):
    """One task run in this process, one by a real `rqworker` (a forked work horse): a per-process
    registry would show one of them; the scrape shows both."""
    task_start(user=UserFactory(), kind=TEST_STEPS, params={"steps": 1})
    run_queued_jobs(metrics_on)
    here = scrape()
    assert value(here, "live_tasks_tasks_finished_total", kind=TEST_STEPS, status="succeeded") == 1

    other = task_start(user=UserFactory(), kind=TEST_STEPS, params={"steps": 1})
    done = run_burst_worker(child_env())
    assert done.returncode == 0, done.stdout + done.stderr
    other.refresh_from_db()
    assert other.status == "succeeded"

    both = scrape()
    finished = {"kind": TEST_STEPS, "status": "succeeded"}
    assert value(both, "live_tasks_tasks_finished_total", **finished) == 2
    assert value(both, "live_tasks_task_duration_seconds_count", **finished) == 2
    assert value(both, "live_tasks_task_queue_wait_seconds_count", kind=TEST_STEPS) == 2
    assert value(both, "live_tasks_tasks_started_total", kind=TEST_STEPS) == 2
    sent_here = value(here, "live_tasks_pushes_total", type="task.update", outcome="sent") or 0
    sent_both = value(both, "live_tasks_pushes_total", type="task.update", outcome="sent") or 0
    assert sent_both >= sent_here + 3, "the work horse's pushes: its start, progress and end"
    assert Task.objects.filter(status="succeeded").count() == 2


def test_the_grafana_dashboard_uses_only_metrics_the_endpoint_shows(db, metrics_on):
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", []) if "expr" in target
    ]
    assert len(expressions) >= 10
    used = {name for expr in expressions for name in re.findall(r"\b((?:live_tasks|rq)_[a-z_]+)", expr)}
    # Every family the endpoint can show, including those with no sample yet (a fresh Redis).
    from django.test import Client

    text = Client().get(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    families = {family.name for family in text_string_to_metric_families(text)}
    shown = set()
    for family in families:
        shown |= {family, f"{family}_total", f"{family}_bucket", f"{family}_sum", f"{family}_count"}
    assert used - shown == set(), "the dashboard queries metrics the endpoint does not have"
    for metric in stats.METRICS.values():
        assert any(metric.name in name for name in used), f"no panel shows {metric.name}"


def test_the_first_alerts_in_docs_parse_and_use_only_metrics_the_endpoint_shows(db, metrics_on):
    page = (ROOT / "docs" / "metrics.md").read_text()
    block = page.split("## The first alerts", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    rules = yaml.safe_load(block)["groups"][0]["rules"]
    assert {"LiveTasksSafetyNetStale", "LiveTasksFailing", "LiveTasksQueueWaitHigh", "LiveTasksPushesDropped"} <= {
        rule["alert"] for rule in rules
    }
    from django.test import Client

    text = Client().get(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    families = {family.name for family in text_string_to_metric_families(text)}
    for rule in rules:
        for name in re.findall(r"\b((?:live_tasks|rq)_[a-z_]+)", rule["expr"]):
            assert re.sub(r"_(total|bucket|sum|count)$", "", name) in families, (rule["alert"], name)


def test_a_short_metrics_token_is_a_warning_of_manage_py_check(settings):
    from live_tasks.checks import METRICS_TOKEN_WEAK, check_metrics

    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "METRICS_TOKEN": "short"}
    assert [message.id for message in check_metrics()] == [METRICS_TOKEN_WEAK]
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "METRICS_TOKEN": TOKEN}
    assert check_metrics() == []
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "METRICS_TOKEN": None}
    assert check_metrics() == []

"""What goes wrong on Celery, for real: a RabbitMQ broker, `celery worker` processes with a prefork
pool of one child (tests/library/helpers.py: worker_command), the scheduler's safety net.

Cancel before and during a run, the job's soft and hard time limits, a visible retry, a killed pool
child and a killed worker (acks_late: RabbitMQ delivers the message again, and the task row decides),
a message delivered twice, a message the broker lost (a private node, tests/library/rabbitmq.py),
and the safety net ending a lost task behind a backlog. Bounds are asserted on measured times;
the waits are ceilings.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from django.conf import settings

from live_tasks.conf import live_settings
from live_tasks.models import Task
from live_tasks.services import task_cancel, task_start

from .helpers import (
    HORSE_GONE_BOUND_SECONDS,
    WORKER_LOST_BOUND_SECONDS,
    LiveFeed,
    UserFactory,
    child_env,
    gone,
    scheduler,
    wait_for_task,
    wait_until,
    worker,
)
from .rabbitmq import PrivateRabbitMQ, private_rabbitmq_fixture  # noqa: F401  # the fixture
from .testapp.kinds import SHORT_LIMIT_SECONDS, TEST_STEPS, cleanup_marker

pytestmark = [
    pytest.mark.celery_only,
    pytest.mark.skipif(settings.LIVE_TASKS["QUEUE_BACKEND"] != "celery", reason="a session on Celery only"),
]

LOST = "The worker running this test steps stopped unexpectedly (worker lost). Please start it again."
SKIPPED = "is no longer queued"
# A task that runs until something stops it (a minute of steps).
LONG = {"steps": 600, "step_seconds": 0.1}


# --- What the tests look at ----------------------------------------------------------------------
def log_path(name: str) -> Path:
    return Path(child_env()["TEST_OUTPUT_DIR"]) / f"{name}.log"


def log_text(name: str) -> str:
    return log_path(name).read_text(errors="replace")


def outcomes(task_id: object, *workers: str) -> list[str]:
    """What the runs of the task's job returned (task_run_job: "succeeded", "skipped"...), as the
    named workers logged them, sorted."""
    returned = re.compile(rf"run_task\[{task_id}\] succeeded in [0-9.e-]+s: '(\w+)'")
    return sorted(outcome for name in workers for outcome in returned.findall(log_text(name)))


def messages_ready() -> int:
    """Messages waiting in the session's queue on the broker the test process's app points at."""
    from live_tasks.queue import queue_backend

    return queue_backend()._queue_declare()[0]  # type: ignore[attr-defined]  # CeleryBackend's


def record(task_id: object) -> dict[bytes, bytes]:
    """The job record that the pool child writes in Redis (live_tasks/queue/celery.py)."""
    from live_tasks import redisclients
    from live_tasks.queue.celery import RECORD_KEY

    return redisclients.rq_connection().hgetall(RECORD_KEY.format(task_id))  # type: ignore[return-value]


def pool_child(process) -> psutil.Process:
    """The one prefork pool process of a worker started with worker_command (concurrency 1)."""
    return wait_until(lambda: (children := psutil.Process(process.pid).children()) and children[0], 30)


def kill_whole(process) -> float:
    """SIGKILL a worker's main process and its pool child at once; returns when (time.monotonic())."""
    family = [parent := psutil.Process(process.pid), *parent.children(recursive=True)]
    for member in family:
        member.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    # Not psutil.wait_procs: an orphaned child may stay a zombie a while, which it counts as alive.
    wait_until(lambda: all(gone(member) for member in family), 10, interval=0.02)
    return killed_at


def measured(what: str, seconds: float) -> float:
    """A measured time, shown with `pytest -s` (and in a failure's captured output)."""
    print(f"measured: {what}: {seconds:.2f} s")
    return seconds


def publish_again(task_id: object) -> None:
    """A second message for the task, as a redelivery or a duplicate publish would leave one."""
    from live_tasks.queue.celery import run_task

    run_task.apply_async(args=(str(task_id),), task_id=str(task_id), queue=live_settings.QUEUE)


@pytest.fixture(autouse=True)
def empty_broker_queue(queue) -> Iterator[None]:
    """Every test starts with the session's broker queue empty (and the test Redis flushed)."""
    _purge()
    yield
    _purge()


def _purge() -> None:
    from amqp.exceptions import NotFound

    from .celery_app import app

    # NotFound: not declared yet.
    with app.connection_for_write() as connection, contextlib.suppress(NotFound):
        connection.channel().queue_purge(live_settings.QUEUE)


# --- 1. Cancel while queued ----------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_task_cancelled_while_queued_with_no_worker_never_runs_when_a_worker_comes():
    task = task_start(user=UserFactory(), kind=TEST_STEPS, params={"steps": 2})
    assert messages_ready() == 1
    task_cancel(task=task)  # revoke reaches no worker: none runs
    task.refresh_from_db()
    assert (task.status, task.needs_cleanup) == ("cancelled", False)
    assert cleanup_marker(task.id).exists(), "cleaned up at the cancel: no job is writing for it"

    with worker(child_env(), name="worker-cancel-queued"):
        assert wait_until(lambda: outcomes(task.id, "worker-cancel-queued"), 60) == ["skipped"]
        wait_until(lambda: messages_ready() == 0, 30)  # taken and acknowledged
    assert f"Task {task.id} {SKIPPED}" in log_text("worker-cancel-queued")
    task.refresh_from_db()
    assert (task.status, task.started_at, task.progress) == ("cancelled", None, 0), "never ran"
    assert record(task.id) == {}, "no run started, so no job record"


# --- 2. Cancel while running ---------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_cancelling_a_running_task_kills_its_pool_child_and_the_worker_runs_the_next():
    running = task_start(user=UserFactory(), kind=TEST_STEPS, params=LONG)
    with worker(child_env(), name="worker-cancel-running") as process:
        wait_for_task(running.id, lambda t: t.status == "running" and t.progress > 0, 60)
        child = pool_child(process)
        following = task_start(user=UserFactory(), kind=TEST_STEPS, params={"steps": 3})
        revoked = task_start(user=UserFactory(), kind=TEST_STEPS, params={"steps": 3})
        task_cancel(task=revoked)  # waiting behind the running one: its worker gets the revoke

        cancelled_at = time.monotonic()
        task_cancel(task=running)
        wait_until(lambda: gone(child), 30, interval=0.02)
        took = time.monotonic() - cancelled_at
        cleaned = wait_for_task(running.id, lambda t: not t.needs_cleanup, 30)
        done = wait_for_task(following.id, lambda t: t.is_finished, 60)
        wait_until(lambda: messages_ready() == 0, 30)
        assert process.poll() is None, "the worker goes on"

    measured("cancel -> pool child dead", took)
    assert took < 10, f"the pool child died {took:.1f} s after the cancel"
    assert (cleaned.status, cleaned.detail) == ("cancelled", "Cancelled.") and cleaned.progress < 50
    assert cleanup_marker(running.id).exists()
    assert record(running.id)[b"phase"] == b"stopped"
    assert done.status == "succeeded", "the next task runs in a new pool child"
    revoked.refresh_from_db()
    assert (revoked.status, revoked.started_at) == ("cancelled", None)


# --- 3. The job's time limits --------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_task_past_its_time_limit_times_out_softly_and_one_that_ignores_it_is_killed(monkeypatch):
    import live_tasks.queue.celery

    # The hard limit is soft + HARD_LIMIT_GRACE_SECONDS, sent with the message by the enqueuer (here).
    grace = 3
    monkeypatch.setattr(live_tasks.queue.celery, "HARD_LIMIT_GRACE_SECONDS", grace)
    soft = task_start(user=UserFactory(), kind="test_short_limit", params={"steps": 100, "step_seconds": 0.1})
    ignoring = {"steps": 100, "step_seconds": 0.2, "ignore_time_limit": True}
    hard = task_start(user=UserFactory(), kind="test_short_limit", params=ignoring)
    timed_out = "The short limit steps timed out."
    with worker(child_env(), name="worker-time-limits") as process:
        soft = wait_for_task(soft.id, lambda t: t.is_finished and not t.needs_cleanup, 60)
        assert (soft.status, soft.error) == ("failed", timed_out)
        wait_for_task(hard.id, lambda t: t.status == "running", 30)
        child = pool_child(process)
        hard = wait_for_task(hard.id, lambda t: t.is_finished and not t.needs_cleanup, 60)
        # Failed "timed out" by the worker's main process, then its child terminated (SIGTERM, then SIGKILL).
        wait_until(lambda: gone(child), 10)
        assert process.poll() is None, "the worker goes on"

    assert cleanup_marker(soft.id).exists()
    assert soft.started_at and soft.finished_at
    ran = (soft.finished_at - soft.started_at).total_seconds()
    measured(f"soft limit {SHORT_LIMIT_SECONDS} s: started -> timed out", ran)
    assert SHORT_LIMIT_SECONDS - 0.5 < ran < SHORT_LIMIT_SECONDS + 3, f"ended {ran:.1f} s after it started"

    assert (hard.status, hard.error) == ("failed", timed_out)
    assert cleanup_marker(hard.id).exists()
    assert hard.started_at and hard.finished_at
    ran = (hard.finished_at - hard.started_at).total_seconds()
    limit = SHORT_LIMIT_SECONDS + grace
    measured(f"hard limit {limit} s: started -> timed out", ran)
    assert limit - 0.5 < ran < limit + 3, f"killed {ran:.1f} s after it started (hard limit {limit} s)"
    # 100 steps of 0.2 s: the soft limit came at about 10 %, the hard one at about 25 %.
    assert hard.progress > 100 * (SHORT_LIMIT_SECONDS + 1) / 20, "it went on past the soft limit"
    assert record(hard.id)[b"phase"] == b"failed"


# --- 4. Retries ----------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_step_with_transient_faults_is_retried_visibly_and_succeeds():
    user = UserFactory()
    with LiveFeed(user) as feed:
        task = task_start(
            user=user,
            kind=TEST_STEPS,
            params={"steps": 1, "with_file": True, "store_retried": True, "transient_failures": 2},
        )
        with worker(child_env(LIVE_TASKS_JSON=json.dumps({"RETRY_BACKOFF": 0.3})), name="worker-retries"):
            done = wait_for_task(task.id, lambda t: t.is_finished, 60)
        feed.wait_for(lambda m: m["type"] == "task" and m["task"]["status"] == "succeeded")

    attempts = live_settings.RETRY_ATTEMPTS
    details = [m["detail"] for m in feed.task_messages(task.id)]
    retrying = [d for d in details if d.startswith("Retrying storing the file")]
    assert [d.split("(")[1] for d in retrying] == [f"attempt 2 of {attempts})…", f"attempt 3 of {attempts})…"], details
    assert done.status == "succeeded" and done.file


# --- 5. A killed pool child; a killed worker -----------------------------------------------------
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_killed_pool_child_fails_only_its_own_task_at_once():
    env = child_env()
    victim = task_start(user=UserFactory(), kind=TEST_STEPS, params=LONG)
    with worker(env, name="worker-child-killed") as first:
        wait_for_task(victim.id, lambda t: t.status == "running" and t.progress > 0, 60)
        bystander = task_start(user=UserFactory(), kind=TEST_STEPS, params={"steps": 40, "step_seconds": 0.1})
        with worker(env, name="worker-bystander") as second:
            wait_for_task(bystander.id, lambda t: t.status == "running" and t.progress > 0, 60)
            pool_child(first).send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            failed = wait_for_task(victim.id, lambda t: t.is_finished and not t.needs_cleanup, 60)
            took = time.monotonic() - killed_at
            survived = wait_for_task(bystander.id, lambda t: t.is_finished, 60)
            assert first.poll() is None and second.poll() is None, "both workers go on"

    measured("pool child SIGKILL -> its task failed", took)
    # At once, by the worker's main process (no safety net runs here): measured 0.05 s, once 3.2 s on a
    # loaded machine; twice the bound of a horse's death, still far below the safety net's ~30 s.
    assert took < 2 * HORSE_GONE_BOUND_SECONDS, f"its task ended {took:.1f} s after the kill"
    assert (failed.status, failed.error) == ("failed", LOST)
    assert cleanup_marker(failed.id).exists()
    assert record(failed.id)[b"lost"] == b"1"
    assert survived.status == "succeeded" and survived.detail.endswith(f"by worker {second.pid}")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_fails_its_task_within_the_bound_and_the_redelivered_message_does_not_run_it():
    env = child_env()
    task = task_start(user=UserFactory(), kind=TEST_STEPS, params=LONG)
    with worker(env, name="worker-killed-whole") as process:
        wait_for_task(task.id, lambda t: t.status == "running" and t.progress > 0, 60)
        killed_at = kill_whole(process)
    before = Task.objects.get(pk=task.id)
    # acks_late: the broker puts the unacknowledged message back when the dead worker's connection closes.
    with worker(env, name="worker-redelivered"), scheduler(env, name="scheduler-killed-worker"):
        lost = wait_for_task(task.id, lambda t: t.is_finished and not t.needs_cleanup, WORKER_LOST_BOUND_SECONDS + 60)
        took = time.monotonic() - killed_at
        assert wait_until(lambda: outcomes(task.id, "worker-redelivered"), 30) == ["skipped"]
        wait_until(lambda: messages_ready() == 0, 30)
    assert f"Task {task.id} {SKIPPED}" in log_text("worker-redelivered")

    assert (lost.status, lost.error) == ("failed", LOST)
    assert cleanup_marker(task.id).exists()
    # docs/operations.md: within ~30 s of the kill (heartbeat 5 s + lost after 20 s + a pass every 10 s).
    measured("worker SIGKILL -> task failed by the safety net", took)
    assert took < WORKER_LOST_BOUND_SECONDS, f"the safety net ended it {took:.1f} s after the kill"
    assert lost.started_at == before.started_at and lost.progress == before.progress, "it did not run again"


# --- 6. One message delivered twice --------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_task_whose_message_is_delivered_twice_runs_once(tmp_path):
    runs = tmp_path / "runs.txt"
    task = task_start(user=UserFactory(), kind=TEST_STEPS, params={"steps": 10, "count_runs_in": str(runs)})
    publish_again(task.id)
    assert messages_ready() == 2
    env = child_env()
    # Two workers, so that the two deliveries may run at once: the row lets one of them start it.
    with worker(env, name="worker-twice-a"), worker(env, name="worker-twice-b"):
        done = wait_for_task(task.id, lambda t: t.is_finished, 60)
        ran = wait_until(lambda: len(found := outcomes(task.id, "worker-twice-a", "worker-twice-b")) == 2 and found, 30)
        wait_until(lambda: messages_ready() == 0, 30)

    assert runs.read_text().count(str(task.id)) == 1, "the work ran once"
    assert ran == ["skipped", "succeeded"]
    assert done.status == "succeeded"
    assert (log_text("worker-twice-a") + log_text("worker-twice-b")).count(f"Task {task.id} {SKIPPED}") == 1


# --- 7. A message the broker lost ----------------------------------------------------------------
@pytest.fixture
def on_private_broker(private_rabbitmq: PrivateRabbitMQ) -> Iterator[PrivateRabbitMQ]:
    """The test process's Celery app on the private node; its children are pointed there by env."""
    from .celery_app import app

    def reconnect(url: str) -> None:
        # The app's connection and producer pools are kombu's, one per broker URL (never closed
        # here: kombu would hand the closed one back for the URL): looked up again for the new one.
        app.conf.broker_url = url
        app._pool = None
        app.amqp._producer_pool = None

    shared = app.conf.broker_url
    reconnect(private_rabbitmq.url)
    yield private_rabbitmq
    reconnect(shared)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_queued_task_whose_message_the_broker_lost_is_queued_again_and_runs(on_private_broker):
    broker = on_private_broker
    user = UserFactory()
    with LiveFeed(user) as feed:
        task = task_start(user=user, kind=TEST_STEPS, params={"steps": 2})
        assert messages_ready() == 1
        broker.lose_everything()
        assert messages_ready() == 0, "the restarted node has no queue, no message"

        env = child_env(
            LIBRARY_TEST_CELERY_BROKER_URL=broker.url,
            LIVE_TASKS_JSON=json.dumps({"QUEUED_GRACE_SECONDS": 2, "RECONCILE_INTERVAL_SECONDS": 2}),
        )
        with worker(env, name="worker-lost-message"):
            # The worker consumes from the queue first: the safety net must judge by the messages
            # waiting in it, not by whether anyone listens.
            wait_until(lambda: " ready." in log_text("worker-lost-message"), 60)
            with scheduler(env, name="scheduler-lost-message"):
                done = wait_for_task(task.id, lambda t: t.is_finished, 60)
        feed.wait_for(lambda m: m["type"] == "task" and m["task"]["status"] == "succeeded")

    assert done.status == "succeeded"
    details = [m["detail"] for m in feed.task_messages(task.id)]
    assert "Queued again after the job queue lost it." in details, details
    assert log_text("worker-lost-message").count(f"run_task[{task.id}] received") == 1


# --- 8. The safety net does not wait behind the work ---------------------------------------------
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_safety_net_ends_a_lost_task_behind_a_backlog_of_queued_ones():
    fast = {"JOB_HEARTBEAT_SECONDS": 1, "LOST_AFTER_SECONDS": 3, "RECONCILE_INTERVAL_SECONDS": 1}
    env = child_env(LIVE_TASKS_JSON=json.dumps({**fast, "QUEUED_GRACE_SECONDS": 1}))
    lost = task_start(user=UserFactory(), kind=TEST_STEPS, params=LONG)
    with worker(env, name="worker-backlog-killed") as process:
        wait_for_task(lost.id, lambda t: t.status == "running" and t.progress > 0, 60)
        backlog = [task_start(user=UserFactory(), kind=TEST_STEPS, params=LONG) for _ in range(5)]
        killed_at = kill_whole(process)
    with scheduler(env, name="scheduler-backlog"):
        failed = wait_for_task(lost.id, lambda t: t.is_finished and not t.needs_cleanup, 60)
        took = time.monotonic() - killed_at
        time.sleep(3)  # passes of the safety net over the backlog, with no worker to take it
        assert [Task.objects.get(pk=t.id).status for t in backlog] == ["queued"] * 5
        assert messages_ready() == 6, "the backlog and the lost task's message put back; nothing queued twice"

        with worker(env, name="worker-backlog"):
            wait_until(lambda: Task.objects.filter(pk__in=[t.id for t in backlog], status="running").exists(), 60)
            time.sleep(3)  # passes of the safety net over the backlog, one of it running
            statuses = sorted(Task.objects.get(pk=t.id).status for t in backlog)
            ready_after = messages_ready()

    assert (failed.status, failed.error) == ("failed", LOST)
    bound = fast["LOST_AFTER_SECONDS"] + fast["RECONCILE_INTERVAL_SECONDS"] + 6  # + start-up margin
    measured("worker SIGKILL behind a backlog -> task failed by the safety net", took)
    assert took < bound, f"the safety net ended it {took:.1f} s after the kill (bound {bound} s)"
    assert statuses == ["queued", "queued", "queued", "queued", "running"], "the backlog waits, untouched"
    assert ready_after == 4, "nothing queued twice (the lost task's message was taken and skipped)"
    assert outcomes(lost.id, "worker-backlog") == ["skipped"]

"""The task signals (live_tasks/signals.py), heard by receivers as a site would connect them.

Jobs run for real (in this process, from the session's queue: helpers.run_queued_jobs; the test
kind of tests/library/testapp), in transactional tests where they commit as in production: each
signal must arrive once, with the task as committed, from every way a task ends, and a receiver
that raises must break nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError

from live_tasks.jobs import task_job_stopped
from live_tasks.models import Task
from live_tasks.queue import task_job_enqueue, task_job_state
from live_tasks.reconcile import task_fail_worker_lost, tasks_reconcile
from live_tasks.reporter import ProgressReporter
from live_tasks.services import QueueUnavailable, task_cancel, task_start
from live_tasks.signals import task_enqueued, task_finished, task_progress, task_started

from .helpers import TaskFactory, UserFactory, put_job, queued_job_ids, run_queued_jobs
from .testapp.kinds import TEST_STEPS, cleanup_marker, other_steps, test_steps

LOST = "The worker running this test steps stopped unexpectedly (worker lost). Please start it again."
SIGNALS = {"enqueued": task_enqueued, "started": task_started, "progress": task_progress, "finished": task_finished}


@dataclass
class Heard:
    signal: str
    sender: Any
    task: Task
    kwargs: dict[str, Any]
    given: tuple[str, int]  # (status, seq) of the task it was given, when it was given it
    stored: tuple[str, int]  # the same, of the row as the receiver read it back then


def connect(signal: Signal, receiver: Any, **kwargs: Any):
    signal.connect(receiver, weak=False, **kwargs)
    return lambda: signal.disconnect(receiver, **kwargs)


@pytest.fixture
def heard():
    """Every task signal sent during the test, in order, as a receiver connected for all kinds sees it."""
    heard: list[Heard] = []
    disconnects = []
    for name, signal in SIGNALS.items():

        def receiver(sender, task, _name=name, signal=None, **kwargs):
            stored = Task.objects.values_list("status", "seq").get(pk=task.pk)
            heard.append(Heard(_name, sender, task, kwargs, (task.status, task.seq), stored))

        disconnects.append(connect(signal, receiver))
    yield heard
    for disconnect in disconnects:
        disconnect()


def names(heard: list[Heard]) -> list[str]:
    return [h.signal for h in heard]


@pytest.mark.django_db(transaction=True)
def test_a_run_sends_enqueued_started_progress_and_finished_each_with_the_committed_task(heard, queue, settings):
    settings.LIVE_TASKS = {
        **settings.LIVE_TASKS,
        "PROGRESS_INTERVAL": 0.1,
    }  # 20 reports over 0.2 s or more: a few writes, not 20
    other_kind = []
    disconnect = connect(task_finished, lambda sender, **kwargs: other_kind.append(sender), sender=other_steps)
    try:
        task = task_start(user=UserFactory(), kind=TEST_STEPS, params={"steps": 20, "step_seconds": 0.01})
        assert names(heard) == ["enqueued"], "sent by the launch, once the job is on the queue"
        run_queued_jobs()
    finally:
        disconnect()

    task.refresh_from_db()
    assert task.status == "succeeded"
    progress = [h for h in heard if h.signal == "progress"]
    assert names(heard) == ["enqueued", "started", *["progress"] * len(progress), "finished"]
    # One per progress write, as throttled as the writes: seq counts the start, each write, the end.
    assert 1 <= len(progress) < 20
    assert task.seq == 1 + len(progress) + 1
    assert [h.task.progress for h in progress] == sorted(h.task.progress for h in progress)
    assert all(0 < h.task.progress < 100 and h.task.detail.startswith("Step ") for h in progress)

    assert all(h.sender is test_steps and h.task.pk == task.pk for h in heard), "sender: the task's kind"
    assert [(h.signal, h.given[0], h.kwargs) for h in heard if h.signal != "progress"] == [
        ("enqueued", "queued", {}),
        ("started", "running", {}),
        ("finished", "succeeded", {"status": "succeeded"}),
    ]
    assert all(h.given == h.stored for h in heard), "the task as committed when sent"
    assert other_kind == [], "a receiver connected for another kind hears nothing of this one"


@pytest.mark.django_db(transaction=True)
def test_a_launch_the_queue_refuses_sends_nothing(heard, monkeypatch):
    def refuse(*args, **kwargs):
        raise RedisConnectionError("down")

    monkeypatch.setattr("live_tasks.services.task_job_enqueue", refuse)
    with pytest.raises(QueueUnavailable):
        task_start(user=UserFactory(), kind=TEST_STEPS)
    assert heard == [], "the row is withdrawn: there is no task to hear of"


def test_progress_is_sent_per_write_and_not_per_report(db, heard, django_capture_on_commit_callbacks):
    task = TaskFactory(kind=TEST_STEPS, status="running")
    with django_capture_on_commit_callbacks(execute=True):
        progress = ProgressReporter(task.id, interval=3600)
        for done in range(1, 1001):
            progress(done, 1000, detail=f"{done} of 1000")
        progress.say("Emailing…")  # unthrottled: a write, so a signal

    assert [(h.signal, h.task.progress, h.task.detail) for h in heard] == [("progress", 99, "Emailing…")]


@pytest.mark.django_db(transaction=True)
def test_a_failed_run_sends_finished_failed_once(heard, queue):
    task = task_start(user=UserFactory(), kind=TEST_STEPS, params={"fail_at": 1})
    run_queued_jobs()

    assert names(heard) == ["enqueued", "started", "finished"]
    finished = heard[-1]
    assert (finished.kwargs, finished.task.error) == ({"status": "failed"}, "Step 1 failed on purpose.")
    assert finished.given == finished.stored and finished.given[0] == "failed"
    assert finished.task.pk == task.pk


@pytest.mark.django_db(transaction=True)
def test_a_cancel_sends_finished_cancelled_once_and_the_stop_callback_adds_none(heard, queue):
    task = task_start(user=UserFactory(), kind=TEST_STEPS)
    task_cancel(task=task)
    task_job_stopped(SimpleNamespace(id=str(task.id), kwargs={}), None)  # the worker's callback after a stop
    run_queued_jobs()  # nothing left to run

    assert names(heard) == ["enqueued", "finished"]
    assert (heard[-1].kwargs, heard[-1].task.detail) == ({"status": "cancelled"}, "Cancelled.")


@pytest.mark.django_db(transaction=True)
def test_finished_waits_for_the_commit_of_a_callers_transaction_and_a_rollback_sends_none(heard, queue):
    task = task_start(user=UserFactory(), kind=TEST_STEPS)
    heard.clear()

    with pytest.raises(ZeroDivisionError), transaction.atomic():
        task_cancel(task=task)
        1 / 0  # noqa: B018 -- the caller's transaction fails after the cancel
    assert heard == [] and Task.objects.get(pk=task.pk).status == "queued"

    with transaction.atomic():
        task_cancel(task=task)
        assert heard == [], "not before the cancel is committed"
    assert [(h.signal, h.stored[0]) for h in heard] == [("finished", "cancelled")]


def test_a_task_whose_kind_is_gone_is_sent_with_no_sender(db, heard, queue, django_capture_on_commit_callbacks):
    task = TaskFactory(kind="uninstalled_kind")
    task_job_enqueue(str(task.id), kind=test_steps)
    with django_capture_on_commit_callbacks(execute=True):
        run_queued_jobs()

    assert [(h.signal, h.sender, h.kwargs) for h in heard] == [
        ("started", None, {}),
        ("finished", None, {"status": "failed"}),
    ]


def make_lost(job_phase: str | None) -> Task:
    """A running task whose job is gone (None) or in `job_phase`, a while ago."""
    task = TaskFactory(kind=TEST_STEPS, status="running", created_at=timezone.now() - timedelta(minutes=5))
    if job_phase is not None:
        put_job(str(task.id), job_phase)
    return task


@pytest.mark.parametrize(
    ("end", "status", "message"),
    [
        (lambda task: tasks_reconcile(), "failed", LOST),  # the scheduler: its job is gone
        (lambda task: task_fail_worker_lost(str(task.id)), "failed", LOST),  # the worker: its horse died
        (lambda task: tasks_reconcile(), "cancelled", ""),  # the scheduler: its job was stopped
    ],
    ids=["job lost", "work horse died", "job stopped"],
)
def test_the_safety_net_sends_finished_once_for_the_task_it_ends(
    db, heard, queue, django_capture_on_commit_callbacks, end, status, message
):
    task = make_lost("stopped" if status == "cancelled" else None)
    with django_capture_on_commit_callbacks(execute=True):
        end(task)
        tasks_reconcile()  # a second pass ends nothing more

    assert [(h.signal, h.sender, h.kwargs, h.task.error) for h in heard] == [
        ("finished", test_steps, {"status": status}, message)
    ]


@pytest.mark.parametrize(
    ("params", "status"), [({}, "succeeded"), ({"fail_at": 2}, "failed")], ids=["succeeding", "failing"]
)
@pytest.mark.django_db(transaction=True)
def test_a_raising_receiver_breaks_neither_the_launch_nor_the_task(queue, caplog, params, status):
    def broken(sender, **kwargs):
        raise RuntimeError("the metrics server is down")

    disconnects = [connect(signal, broken) for signal in SIGNALS.values()]
    try:
        with caplog.at_level(logging.ERROR, logger="django.dispatch"):
            task = task_start(user=UserFactory(), kind=TEST_STEPS, params=params)
            assert queued_job_ids() == [str(task.id)], "the launch stands"
            run_queued_jobs()
    finally:
        for disconnect in disconnects:
            disconnect()

    task.refresh_from_db()
    assert task.status == status and not task.needs_cleanup
    assert cleanup_marker(task.id).exists() == (status == "failed"), "a failure's cleanup still runs"
    assert task_job_state(str(task.id)).phase == ("finished" if status == "succeeded" else "failed")
    errors = [r for r in caplog.records if r.name == "django.dispatch" and "metrics server" in str(r.exc_info)]
    assert len(errors) >= 3, "each raising receiver is logged, with its traceback"

"""The safety net as a table: what the queue says of a task's job x the task's state -> what is done.

Each cell is set up for real: a Task row and a job in that phase as the session's queue records it
(an RQ job in that status; on Celery a message on the broker, or the job record in the library's
Redis: helpers.put_job), then one pass of live_tasks.reconcile. The expected table is written out
here, not imported from the code.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from live_tasks.models import Task
from live_tasks.reconcile import tasks_reconcile

from .helpers import TaskFactory, core_job_name, put_job, queued_jobs, run_queued_jobs
from .testapp.kinds import TEST_STEPS, cleanup_marker, test_steps

LOST = "The worker running this test steps stopped unexpectedly (worker lost). Please start it again."
UNEXPECTED = "The test steps failed unexpectedly. Please try again; the team has the details."

# (job, task) -> (what the pass reports, the task's status after, whether its cleanup ran)
TABLE = {
    ("missing", "queued"): ("requeued", "queued", False),
    ("missing", "running"): ("failed", "failed", True),
    ("missing", "ended"): ("cleaned up", "cancelled", True),
    ("queued", "queued"): (None, "queued", False),
    ("queued", "running"): ("failed", "failed", True),
    ("queued", "ended"): ("cleaned up", "cancelled", True),
    ("started, heartbeating", "queued"): (None, "queued", False),
    ("started, heartbeating", "running"): (None, "running", False),
    ("started, heartbeating", "ended"): (None, "cancelled", False),
    ("started, silent", "queued"): ("failed", "failed", True),
    ("started, silent", "running"): ("failed", "failed", True),
    ("started, silent", "ended"): ("cleaned up", "cancelled", True),
    ("finished", "queued"): ("failed", "failed", True),
    ("finished", "running"): ("failed", "failed", True),
    ("finished", "ended"): ("cleaned up", "cancelled", True),
    ("failed", "queued"): ("failed", "failed", True),
    ("failed", "running"): ("failed", "failed", True),
    ("failed", "ended"): ("cleaned up", "cancelled", True),
    ("stopped", "queued"): ("cancelled", "cancelled", True),
    ("stopped", "running"): ("cancelled", "cancelled", True),
    ("stopped", "ended"): ("cleaned up", "cancelled", True),
}


def make_task(state: str) -> Task:
    long_ago = timezone.now() - timedelta(minutes=5)  # past the grace period for a lost enqueue
    if state == "ended":
        return TaskFactory(kind=TEST_STEPS, status="cancelled", needs_cleanup=True, created_at=long_ago)
    return TaskFactory(kind=TEST_STEPS, status=state, created_at=long_ago)


def make_job(state: str, task: Task) -> None:
    if state == "missing":
        return
    if state.startswith("started"):
        age = timedelta(seconds=1) if state.endswith("heartbeating") else timedelta(minutes=2)
        put_job(str(task.id), "started", heartbeat_age=age)
    else:
        put_job(str(task.id), "waiting" if state == "queued" else state)


@pytest.mark.parametrize(("job_state", "task_state"), list(TABLE))
def test_each_job_state_and_task_state_has_one_outcome(db, queue, job_state, task_state):
    task = make_task(task_state)
    make_job(job_state, task)

    done = tasks_reconcile()

    reported, status_after, cleaned = TABLE[(job_state, task_state)]
    assert done == ({reported: 1} if reported else {})
    task.refresh_from_db()
    assert task.status == status_after
    assert cleanup_marker(task.id).exists() == cleaned, "the kind's cleanup runs exactly when the task's job is gone"
    if cleaned:
        assert not task.needs_cleanup
    if status_after == "failed":
        # A job that the queue saw fail or finish tells of an error; otherwise the worker was lost.
        assert task.error == (UNEXPECTED if job_state in ("finished", "failed") else LOST)


def test_a_lost_queued_task_is_requeued_with_its_own_kinds_job(db, queue):
    task = make_task("queued")

    assert tasks_reconcile() == {"requeued": 1}

    (job,) = queued_jobs()
    assert (job.id, job.name, job.args) == (str(task.id), core_job_name(), (str(task.id),))
    assert job.timeout == test_steps.job_timeout(), "the kind's own time limit"
    task.refresh_from_db()
    assert task.detail == "Queued again after the job queue lost it."


KIND_GONE = "This kind of task is not available any more."


def test_a_task_whose_kind_is_gone_fails_saying_so_from_the_job_and_from_the_safety_net(db, queue):
    from live_tasks.jobs import task_run_job

    long_ago = timezone.now() - timedelta(minutes=5)
    run, lost = (TaskFactory(kind="retired_kind", status="queued", created_at=long_ago) for _ in range(2))
    # Its job has just started (a worker took it, the row is not marked running yet): so the safety
    # net leaves it to the worker. (A waiting message would not do on Celery: the safety net reads
    # the broker's queue depth, not one message, so the lost one would look waiting too.)
    put_job(str(run.id), "started")

    assert tasks_reconcile() == {"failed": 1}, "the lost one cannot be queued again without its kind"
    assert task_run_job(str(run.id)) == "failed"
    for task in (run, lost):
        task.refresh_from_db()
        assert (task.status, task.error) == ("failed", KIND_GONE)


def test_a_queued_task_younger_than_the_grace_period_is_left_alone(db, queue):
    TaskFactory(kind=TEST_STEPS, status="queued")
    assert tasks_reconcile() == {}


def test_a_job_requeued_while_its_first_run_still_goes_does_not_run_again(db, queue):
    # Redis lost the queued job (so the safety net puts it back), but a work horse had already
    # taken it: the old run and the requeued job both start. The row decides: only one passes
    # the queued -> running transition (live_tasks/state.py: TRANSITIONS["start"]); the other skips.
    from live_tasks.jobs import task_run_job

    task = make_task("queued")
    assert tasks_reconcile() == {"requeued": 1}

    assert task_run_job(str(task.id)) == "succeeded"  # the old run, in its orphaned horse
    assert run_queued_jobs() == {str(task.id): "skipped"}  # the requeued job
    task.refresh_from_db()
    assert task.status == "succeeded"


def test_a_job_put_back_on_the_queue_after_its_run_was_lost_does_not_run_again(db, queue):
    # The run was lost (the task fails "worker lost"); its job is waiting again (the queue put it back);
    # a worker takes it later: it finds its task failed and does nothing.
    task = make_task("running")
    make_job("queued", task)

    assert tasks_reconcile() == {"failed": 1}
    assert run_queued_jobs() == {str(task.id): "skipped"}
    task.refresh_from_db()
    assert (task.status, task.error) == ("failed", LOST)
    assert cleanup_marker(task.id).exists(), "cleaned up by the safety net"


@pytest.mark.rq_only  # RQ's job status and heartbeat, read apart; Celery's record is one HGETALL
def test_a_job_that_starts_while_the_safety_net_reads_it_is_not_taken_for_lost(db, queue, monkeypatch):
    """The pass judges one snapshot of the job: its status and its heartbeat read together. (It read
    the status again, so a job that a worker started just after the read looked started with no
    heartbeat, "silent", and its task was failed as lost before it ran: seen in CI.)"""
    import live_tasks.queue.rq
    from live_tasks.queue.rq import task_job_enqueue, task_job_fetch

    task = TaskFactory(kind=TEST_STEPS, params={"steps": 1})
    task_job_enqueue(str(task.id), kind=test_steps)

    def read_then_a_worker_starts_it(task_id):
        snapshot = task_job_fetch(task_id)  # the pass's own read (live_tasks.queue.rq.task_job_state's)
        started = task_job_fetch(task_id)
        assert started is not None
        with queue.connection.pipeline() as pipe:
            started.prepare_for_execution("a-worker", pipeline=pipe)  # what RQ's worker writes
            pipe.execute()
        return snapshot

    monkeypatch.setattr(live_tasks.queue.rq, "task_job_fetch", read_then_a_worker_starts_it)
    assert tasks_reconcile() == {}
    task.refresh_from_db()
    assert task.status == Task.Status.QUEUED and task.error == ""


@pytest.mark.django_db(transaction=True)
def test_a_pass_between_a_tasks_start_and_its_first_heartbeat_leaves_it_alone(queue, monkeypatch):
    """The job has its record before its task is marked running (RQ's job is started first; Celery's
    job claims its record first), so a pass that reads the task just then sees a job that has just
    started, not a running task with no job. (On Celery the record was written after the row: a CI
    rehearsal's pass, on a loaded machine, failed such a task as lost.)"""
    from live_tasks.state import task_mark_running as mark_running

    passes: list[dict[str, int]] = []

    def mark_running_then_a_pass(task_id):
        task = mark_running(task_id)
        passes.append(tasks_reconcile())
        return task

    monkeypatch.setattr("live_tasks.jobs.task_mark_running", mark_running_then_a_pass)
    task = TaskFactory(kind=TEST_STEPS, params={"steps": 1})
    from live_tasks.queue import task_job_enqueue

    task_job_enqueue(str(task.id), kind=test_steps)
    run_queued_jobs()
    task.refresh_from_db()
    assert passes == [{}]
    assert (task.status, task.error) == ("succeeded", "")

"""Every generic path of the core, driven by a kind that exists only in the tests (tests/library/testapp).

Launch, progress, the live feed, the download, failure, cancel, a killed work horse, a killed
worker with the scheduler's safety net, and the admin's retry and cancel: none of it knows the kind.
"""

from __future__ import annotations

import signal
import time

import psutil
import pytest

from live_tasks.conf import live_settings
from live_tasks.models import Task
from live_tasks.services import task_cancel, task_start

from .helpers import (
    LiveFeed,
    StaffFactory,
    UserFactory,
    child_env,
    queued_job_ids,
    run_queued_jobs,
    scheduler,
    wait_for_task,
    worker,
)
from .testapp.kinds import TEST_STEPS, cleanup_marker

LOST = "The worker running this test steps stopped unexpectedly (worker lost). Please start it again."


@pytest.mark.django_db(transaction=True)
def test_a_task_of_any_kind_runs_reports_progress_live_and_offers_its_file(queue, client_for):
    user = UserFactory()
    with LiveFeed(user) as feed:
        task = task_start(user=user, kind=TEST_STEPS, params={"steps": 4, "step_seconds": 0.15, "with_file": True})
        run_queued_jobs()
        feed.wait_for(lambda m: m["type"] == "task" and m["task"]["status"] == "succeeded")

    pushed = feed.task_messages(task.id)
    assert [m["seq"] for m in pushed] == list(range(len(pushed))), "every change, in order, from seq 0"
    assert [m["progress"] for m in pushed] == [0, 0, 25, 50, 75, 99, 100], "100 only with success"
    assert all(m["progress"] < 100 for m in pushed if m["status"] != "succeeded")
    final = pushed[-1]
    assert (final["label"], final["url"], final["status_display"]) == ("Test steps", f"/tasks/{task.id}/", "Succeeded")
    assert final["detail"].startswith("4 steps done")

    response = client_for(user).get(final["download_url"])
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="steps-{task.id}.txt"'
    assert b"".join(response.streaming_content) == f"the result of {task.id}".encode()
    assert client_for(UserFactory()).get(final["download_url"]).status_code == 404, "owner only"
    assert client_for(user).get(f"/tasks/{task.id}/").status_code == 200, "the core's page shows any kind"


def test_a_failing_task_ends_failed_with_its_message_and_is_cleaned_up(db, queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        task = task_start(user=UserFactory(), kind=TEST_STEPS, params={"fail_at": 2, "with_file": True})
    run_queued_jobs()
    task.refresh_from_db()
    assert (task.status, task.error) == ("failed", "Step 2 failed on purpose.")
    assert task.progress == 33, "progress stays where the work stopped"
    assert cleanup_marker(task.id).exists() and not task.needs_cleanup


def test_cancelling_a_queued_task_takes_its_job_off_the_queue_and_cleans_up(
    db, queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        task = task_start(user=UserFactory(), kind=TEST_STEPS)
    assert queued_job_ids() == [str(task.id)]
    task_cancel(task=task)
    task.refresh_from_db()
    assert task.status == "cancelled" and task.detail == "Cancelled."
    if live_settings.QUEUE_BACKEND == "rq":
        assert queued_job_ids() == [], "deleted from RQ's queue"
    # On Celery the message is revoked: every worker drops it when it comes. A job that still ran
    # would find its task cancelled and do nothing.
    assert run_queued_jobs().get(str(task.id), "skipped") == "skipped"
    assert queued_job_ids() == []
    task.refresh_from_db()
    assert task.status == "cancelled" and task.started_at is None
    assert cleanup_marker(task.id).exists() and not task.needs_cleanup


@pytest.mark.django_db(transaction=True)
def test_the_admin_cancels_and_retries_through_the_tasks_own_kind(queue, client_for):
    staff = StaffFactory(permissions=["view_task", "cancel_task", "retry_task"])
    owner = UserFactory()
    running = task_start(user=owner, kind=TEST_STEPS, params={"steps": 7})
    client = client_for(staff)

    response = client.post(
        "/admin/live_tasks/task/", {"action": "cancel_tasks", "_selected_action": [running.id]}, follow=True
    )
    assert b"Cancelled 1 task." in response.content
    response = client.post(
        "/admin/live_tasks/task/", {"action": "retry_tasks", "_selected_action": [running.id]}, follow=True
    )
    assert b"Started 1 new task." in response.content
    retried = Task.objects.exclude(pk=running.pk).get()
    assert (retried.user, retried.kind, retried.params, retried.status) == (owner, TEST_STEPS, {"steps": 7}, "queued")
    assert str(retried.id) in queued_job_ids(), "its job is queued"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_admin_cancels_a_running_task_on_a_worker_and_its_retry_runs_there(client_for):
    """The admin's actions on a live worker, on either queue: the cancel stops the job's process and
    cleans up; the retry is a new task that the same worker runs to success."""
    staff = StaffFactory(permissions=["view_task", "cancel_task", "retry_task"])
    owner = UserFactory()
    running = task_start(user=owner, kind=TEST_STEPS, params={"steps": 600, "step_seconds": 0.1})
    client = client_for(staff)
    with worker(child_env(), name="worker-admin-actions") as process:
        wait_for_task(running.id, lambda t: t.status == "running" and t.progress > 0, 60)
        (job_process,) = psutil.Process(process.pid).children()
        response = client.post(
            "/admin/live_tasks/task/", {"action": "cancel_tasks", "_selected_action": [running.id]}, follow=True
        )
        assert b"Cancelled 1 task." in response.content
        job_process.wait(30)  # killed, long before its 60 s of steps
        cancelled = wait_for_task(running.id, lambda t: not t.needs_cleanup, 30)
        assert cancelled.status == "cancelled" and cleanup_marker(running.id).exists()

        Task.objects.filter(pk=running.pk).update(params={"steps": 2})  # the retry copies the params
        response = client.post(
            "/admin/live_tasks/task/", {"action": "retry_tasks", "_selected_action": [running.id]}, follow=True
        )
        assert b"Started 1 new task." in response.content
        retried = Task.objects.exclude(pk=running.pk).get()
        done = wait_for_task(retried.id, lambda t: t.is_finished, 60)
        assert (done.user, done.status, done.progress) == (owner, "succeeded", 100)
        assert process.poll() is None, "the worker goes on"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_running_task_is_cancelled_by_stopping_its_work_horse():
    task = task_start(user=UserFactory(), kind=TEST_STEPS, params={"steps": 600, "step_seconds": 0.1})
    with worker(child_env(), name="worker-cancel-any-kind") as process:
        wait_for_task(task.id, lambda t: t.status == "running" and t.progress > 0, 30)
        (horse,) = psutil.Process(process.pid).children()
        task_cancel(task=task)
        horse.wait(30)  # killed on RQ's stop-job command, long before its 60 s of steps
        cleaned = wait_for_task(task.id, lambda t: not t.needs_cleanup, 30)
        assert process.poll() is None, "the worker goes on"
    assert cleaned.status == "cancelled" and cleaned.progress < 100
    assert cleanup_marker(task.id).exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_killed_work_horse_fails_its_task_at_once_and_a_killed_worker_within_the_bound():
    user = UserFactory()
    first = task_start(user=user, kind=TEST_STEPS, params={"steps": 600, "step_seconds": 0.1})
    env = child_env()
    with worker(env, name="worker-horse-killed") as process:
        wait_for_task(first.id, lambda t: t.progress > 0, 30)
        (horse,) = psutil.Process(process.pid).children()
        horse.send_signal(signal.SIGKILL)
        failed = wait_for_task(first.id, lambda t: t.is_finished and not t.needs_cleanup, 30)
    assert (failed.status, failed.error) == ("failed", LOST)
    assert cleanup_marker(first.id).exists()

    second = task_start(user=user, kind=TEST_STEPS, params={"steps": 600, "step_seconds": 0.1})
    with worker(env, name="worker-killed-whole") as process:
        wait_for_task(second.id, lambda t: t.progress > 0, 30)
        family = [parent := psutil.Process(process.pid), *parent.children(recursive=True)]
        for member in family:
            member.send_signal(signal.SIGKILL)
        psutil.wait_procs(family, timeout=10)
        killed_at = time.monotonic()
    with scheduler(env, name="scheduler-any-kind"):
        lost = wait_for_task(second.id, lambda t: t.is_finished and not t.needs_cleanup, 120)
        took = time.monotonic() - killed_at
    assert (lost.status, lost.error) == ("failed", LOST)
    assert cleanup_marker(second.id).exists()
    # docs/operations.md: heartbeat 5 s + lost after 20 s + a pass every 10 s; + start-up margin.
    assert took < 40, f"the safety net ended it {took:.1f} s after the kill"

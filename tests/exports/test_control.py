"""Cancel, retry, transient-fault retries, expiry and the lost-job safety net (in-process worker)."""

from __future__ import annotations

import json
from datetime import timedelta

import django
import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from rq import SimpleWorker
from rq.job import JobStatus

from exports.services import EMAIL_FAILED, export_start
from live_tasks import files
from live_tasks.conf import live_settings
from live_tasks.errors import worker_lost_error
from live_tasks.models import Task
from live_tasks.queue.rq import task_job_fetch as export_job_fetch
from live_tasks.reconcile import tasks_reconcile
from live_tasks.services import tasks_expire
from tests.factories import PostFactory, StaffFactory, TaskFactory, UserFactory
from tests.live import LiveFeed
from tests.processes import CapturedSMTP, StalledServer

WORKER_LOST = worker_lost_error("Posts export")

JSON = {"HTTP_ACCEPT": "application/json"}


def run_queued_jobs(queue) -> None:
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def use_smtp(settings, port: int, timeout: float = 2) -> None:
    backend = "django.core.mail.backends.smtp.EmailBackend"
    if django.VERSION >= (6, 1):  # email is configured as MAILERS there
        options = {"host": "127.0.0.1", "port": port, "timeout": timeout}
        settings.MAILERS = {"default": {"BACKEND": backend, "OPTIONS": options}}
    else:
        settings.EMAIL_BACKEND = backend
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, timeout


# --- Cancel ---------------------------------------------------------------------------------


def test_cancel_a_queued_export_takes_its_job_off_the_queue(
    user, user_client, queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        task = export_start(user=user)
    assert queue.count == 1

    response = user_client.post(reverse("exports:cancel", args=[task.id]), follow=True)
    assert b"Posts export cancelled." in response.content
    task.refresh_from_db()
    assert task.status == Task.Status.CANCELLED and task.finished_at
    assert queue.count == 0
    assert export_job_fetch(str(task.id)) is None, "no record left in any RQ registry"

    run_queued_jobs(queue)  # nothing left to run; and nothing may revive the task
    task.refresh_from_db()
    assert task.status == Task.Status.CANCELLED
    assert mail.outbox == []

    again = user_client.post(reverse("exports:cancel", args=[task.id]), **JSON)
    assert again.status_code == 409 and again.json()["status"] == "cancelled"


def test_cancel_is_post_only_owner_only_and_csrf_protected(user, other_user, client_for, queue):
    task = TaskFactory(user=user)
    url = reverse("exports:cancel", args=[task.id])
    assert client_for(user).get(url).status_code == 405
    assert client_for(other_user).post(url).status_code == 404
    assert client_for(user, enforce_csrf_checks=True).post(url).status_code == 403
    task.refresh_from_db()
    assert task.status == Task.Status.QUEUED


@pytest.mark.django_db(transaction=True)
def test_a_cancel_reaches_the_open_page_live(queue, client_for):
    user = UserFactory()
    with LiveFeed(user) as feed:
        task = export_start(user=user)
        client_for(user).post(reverse("exports:cancel", args=[task.id]))
        feed.wait_for(lambda m: m["type"] == "task" and m["task"]["status"] == "cancelled")
    (final,) = [t for t in feed.task_messages(task.id) if t["status"] == "cancelled"]
    assert final["detail"] == "Cancelled. Nothing was emailed."


# --- Transient faults are retried -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_busy_mail_server_is_retried_and_the_user_sees_it(queue, settings):
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "RETRY_BACKOFF": 0.05}
    user = UserFactory()
    PostFactory.create_batch(3, author=user)
    with CapturedSMTP(refuse_first=2) as smtp, LiveFeed(user) as feed:
        use_smtp(settings, smtp.port)
        task = export_start(user=user)
        run_queued_jobs(queue)
    task.refresh_from_db()
    assert task.status == Task.Status.SUCCEEDED
    assert smtp.attempts == 3 and len(smtp.messages) == 1, "exactly one email in the end"
    details = [t["detail"] for t in feed.task_messages(task.id)]
    assert any(d.startswith("Retrying sending the email") and "attempt 2 of 4" in d for d in details), details
    assert any("attempt 3 of 4" in d for d in details)


def test_a_mail_server_that_stays_down_fails_the_task_after_bounded_retries(
    user, queue, settings, django_capture_on_commit_callbacks
):
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "RETRY_BACKOFF": 0.01}
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "RETRY_ATTEMPTS": 3}
    with CapturedSMTP(refuse_first=100) as smtp:
        use_smtp(settings, smtp.port)
        with django_capture_on_commit_callbacks(execute=True):
            task = export_start(user=user)
        run_queued_jobs(queue)
    task.refresh_from_db()
    assert smtp.attempts == 3
    assert task.status == Task.Status.FAILED and task.error == EMAIL_FAILED
    assert not task.file, "a failed task keeps no file"
    assert list(files.work_path(task.id).parent.glob(f"{task.id}*")) == []


def test_a_mail_server_that_refuses_for_good_is_not_asked_again(
    user, queue, settings, django_capture_on_commit_callbacks
):
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "RETRY_BACKOFF": 0.01}
    with CapturedSMTP(refuse_first=100, reply="554 5.7.1 Message rejected") as smtp:
        use_smtp(settings, smtp.port)
        with django_capture_on_commit_callbacks(execute=True):
            task = export_start(user=user)
        run_queued_jobs(queue)
    task.refresh_from_db()
    assert smtp.attempts == 1, "a permanent refusal is final"
    assert task.status == Task.Status.FAILED and task.error == EMAIL_FAILED


# --- Job timeout ------------------------------------------------------------------------------


def test_an_export_past_its_timeout_ends_timed_out(user, queue, settings, django_capture_on_commit_callbacks):
    settings.EXPORT_JOB_TIMEOUT = 1
    with StalledServer() as hung_smtp:  # the email step hangs until the job's time is up
        use_smtp(settings, hung_smtp.port, timeout=30)
        with django_capture_on_commit_callbacks(execute=True):
            task = export_start(user=user)
        run_queued_jobs(queue)
    task.refresh_from_db()
    assert task.status == Task.Status.FAILED
    assert task.error == "The posts export timed out."
    assert not task.file


# --- Expiry -----------------------------------------------------------------------------------


def test_expired_exports_lose_their_file_and_say_so(
    user, user_client, queue, settings, django_capture_on_commit_callbacks
):
    PostFactory(author=user)
    with django_capture_on_commit_callbacks(execute=True):
        task = export_start(user=user)
    run_queued_jobs(queue)
    task.refresh_from_db()
    stored = task.file.name
    assert task.file.storage.exists(stored)
    fresh = TaskFactory(user=user, status=Task.Status.SUCCEEDED, file="exports/keep.json", finished_at=timezone.now())

    Task.objects.filter(pk=task.pk).update(
        finished_at=timezone.now() - timedelta(days=live_settings.RESULT_RETENTION_DAYS + 1)
    )
    assert tasks_expire() == 1

    task.refresh_from_db()
    assert task.expired_at and not task.file
    assert not task.file.storage.exists(stored)
    assert user_client.get(f"/api/tasks/{task.id}/").json()["download_url"] is None
    gone = user_client.get(reverse("exports:download", args=[task.id]))
    assert gone.status_code == 404
    # Not Django's bare "Not Found": the site's page, saying why, with a way back.
    assert b"deleted after the retention period" in gone.content and b'class="site-header"' in gone.content
    assert f'href="/exports/{task.id}/"'.encode() in gone.content
    page = user_client.get(reverse("exports:detail", args=[task.id])).content.decode()
    assert ">Expired<" in page and "The file was deleted after the retention period." in page
    assert page.count("retention period") == 1, "one expiry notice, not two"
    assert "data-expired" in page, "styled as expired (a grey bar), not as a fresh success"
    listed = user_client.get("/exports/").content.decode()
    row = listed.split(f'data-task-id="{task.id}"', 1)[1].split('data-task-id="', 1)[0]
    assert ">Expired<" in row and ">Succeeded<" not in row
    fresh.refresh_from_db()
    assert fresh.expired_at is None


# --- The safety net ---------------------------------------------------------------------------


def test_reconcile_requeues_a_queued_task_whose_job_vanished(user, queue, settings, django_capture_on_commit_callbacks):
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "QUEUED_GRACE_SECONDS": 0}
    PostFactory(author=user)
    with django_capture_on_commit_callbacks(execute=True):
        task = export_start(user=user)
    queue.connection.flushdb()  # what a Redis restart without persistence does

    assert tasks_reconcile() == {"requeued": 1}
    run_queued_jobs(queue)
    task.refresh_from_db()
    assert task.status == Task.Status.SUCCEEDED
    assert len(mail.outbox) == 1


def test_reconcile_fails_a_running_task_whose_job_stopped_heartbeating(
    user, queue, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        task = export_start(user=user)
    job = export_job_fetch(str(task.id))
    assert job is not None
    # The job as a worker left it when it was killed: started, last heartbeat long ago.
    queue.connection.hset(
        job.key, mapping={"status": JobStatus.STARTED, "last_heartbeat": "2020-01-01T00:00:00.000000Z"}
    )
    Task.objects.filter(pk=task.pk).update(status=Task.Status.RUNNING)
    files.work_path(task.id).parent.mkdir(parents=True, exist_ok=True)
    files.work_path(task.id).write_bytes(b'{"partial')

    assert tasks_reconcile() == {"failed": 1}
    task.refresh_from_db()
    assert task.status == Task.Status.FAILED and task.error == WORKER_LOST
    assert not files.work_path(task.id).exists(), "the partial file is deleted"


def test_reconcile_fails_a_task_whose_worker_died_before_marking_it_running(
    user, queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        task = export_start(user=user)
    job = export_job_fetch(str(task.id))
    assert job is not None
    queue.connection.hset(
        job.key, mapping={"status": JobStatus.STARTED, "last_heartbeat": "2020-01-01T00:00:00.000000Z"}
    )

    assert tasks_reconcile() == {"failed": 1}
    task.refresh_from_db()
    assert task.status == Task.Status.FAILED and task.error == WORKER_LOST


def test_a_relaunch_clears_a_task_whose_worker_was_lost(user, user_client, queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = export_start(user=user)
    job = export_job_fetch(str(first.id))
    assert job is not None
    queue.connection.delete(job.key)
    Task.objects.filter(pk=first.pk).update(status=Task.Status.RUNNING)

    with django_capture_on_commit_callbacks(execute=True):
        response = user_client.post("/exports/", **JSON)
    assert response.status_code == 202
    first.refresh_from_db()
    assert first.status == Task.Status.FAILED and first.error == WORKER_LOST


# --- Admin actions ----------------------------------------------------------------------------


def test_staff_cancel_and_retry_from_the_admin(user, queue, client_for, django_capture_on_commit_callbacks):
    staff = StaffFactory(permissions=["view_task", "cancel_task", "retry_task"])
    admin_client = client_for(staff)
    with django_capture_on_commit_callbacks(execute=True):
        task = export_start(user=user)
    url = reverse("admin:live_tasks_task_changelist")

    response = admin_client.post(url, {"action": "cancel_tasks", "_selected_action": [task.id]}, follow=True)
    assert b"Cancelled 1 task." in response.content
    task.refresh_from_db()
    assert task.status == Task.Status.CANCELLED

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {"action": "retry_tasks", "_selected_action": [task.id]}, follow=True)
    assert b"Started 1 new task." in response.content
    retried = Task.objects.exclude(pk=task.pk).get()
    assert retried.user == user and retried.kind == task.kind and retried.status == Task.Status.QUEUED
    assert queue.job_ids == [str(retried.id)]
    run_queued_jobs(queue)
    retried.refresh_from_db()
    assert retried.status == Task.Status.SUCCEEDED
    assert json.loads(retried.file.open("rb").read())["count"] == 0

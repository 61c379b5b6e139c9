"""Launching an export: POST /exports/, the one-unfinished-export rule, and a Redis outage."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from redis import Redis
from rq import Queue

from exports.services import export_start
from live_tasks.models import Task
from live_tasks.queue import rq as exports_queue
from live_tasks.services import TaskAlreadyRunning as ExportAlreadyRunning
from tests.factories import TaskFactory, UserFactory
from tests.library.contract import TASK_KEYS
from tests.processes import free_port

JSON: dict = {
    "HTTP_ACCEPT": "application/json"
}  # extra headers: dict[str, str] would clash with Client's typed options
EXPORTS_URL = "/exports/"


def test_json_launch_returns_202_and_enqueues_after_commit(
    user_client, user, queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = user_client.post(EXPORTS_URL, **JSON)
        assert queue.count == 0, "nothing may be enqueued before the transaction commits"

    assert response.status_code == 202
    body = response.json()
    assert set(body) == TASK_KEYS
    assert body["status"] == "queued" and body["progress"] == 0 and body["download_url"] is None
    assert len(callbacks) == 1
    assert queue.job_ids == [body["id"]], "the job id is the task id"
    job = queue.fetch_job(body["id"])
    assert job.func_name == "live_tasks.jobs.task_run_job" and job.args == (body["id"],)
    assert job.failure_ttl == 7 * 24 * 3600, "RQ's default would keep a failed record a year"
    assert Task.objects.get(pk=body["id"]).user == user


def test_html_launch_redirects_to_the_task_page(user_client, queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = user_client.post(EXPORTS_URL, follow=True)
    task = Task.objects.get()
    assert response.redirect_chain[-1][0] == reverse("exports:detail", args=[task.id])
    # The notice stays on the page while the task runs and after it ends: it says only what stays true.
    assert [str(m) for m in response.context["messages"]] == ["Posts export started."]
    assert b'<progress class="task-bar"' in response.content


def test_second_launch_while_unfinished_returns_the_existing_task(
    user_client, user, queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = user_client.post(EXPORTS_URL, **JSON).json()
    Task.objects.filter(pk=first["id"]).update(progress=40)

    response = user_client.post(EXPORTS_URL, **JSON)
    assert response.status_code == 409
    assert response.json()["id"] == first["id"]
    assert response.json()["progress"] == 40

    response = user_client.post(EXPORTS_URL, follow=True)
    assert response.redirect_chain[-1][0] == reverse("exports:detail", args=[first["id"]])
    assert b"already have a posts export in progress" in response.content
    assert Task.objects.count() == 1 and queue.count == 1


def test_a_finished_export_does_not_block_a_new_one(user_client, user, queue, django_capture_on_commit_callbacks):
    TaskFactory(user=user, status=Task.Status.SUCCEEDED)
    TaskFactory(user=user, status=Task.Status.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        assert user_client.post(EXPORTS_URL, **JSON).status_code == 202


def test_database_constraint_allows_one_unfinished_task_per_user(user):
    TaskFactory(user=user, status=Task.Status.QUEUED)
    with pytest.raises(IntegrityError), transaction.atomic():
        TaskFactory(user=user, status=Task.Status.RUNNING)


@pytest.mark.django_db(transaction=True)
def test_simultaneous_launches_create_exactly_one_task(queue):
    user = UserFactory()
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def launch():
        barrier.wait()
        try:
            export_start(user=user)
            outcomes.append("created")
        except ExportAlreadyRunning:
            outcomes.append("told it exists")
        finally:
            connection.close()

    threads = [threading.Thread(target=launch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["created"] + ["told it exists"] * 3
    assert Task.objects.filter(user=user).count() == 1
    assert queue.count == 1


@pytest.mark.django_db(transaction=True)
def test_redis_unreachable_gives_503_and_leaves_no_task(client_for, monkeypatch):
    # Committed for real (no test transaction around it), so on_commit runs inside the request.
    user_client = client_for(UserFactory())
    # A real connection to a port where nothing listens: the same error as Redis being down.
    dead_redis = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    dead_queue = Queue("default", connection=dead_redis)
    monkeypatch.setattr(exports_queue, "default_queue", lambda: dead_queue)

    response = user_client.post(EXPORTS_URL, **JSON)
    assert response.status_code == 503
    assert "unavailable" in response.json()["error"]
    assert Task.objects.count() == 0

    response = user_client.post(EXPORTS_URL)
    assert response.status_code == 503
    assert b"background service is unavailable" in response.content
    assert Task.objects.count() == 0

"""The whole path with the real programs: HTTP launch, `manage.py rqworker default`, SMTP."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from rq import Worker

from live_tasks.models import Task
from live_tasks.queue.rq import task_job_fetch
from tests.factories import PostFactory, UserFactory, session_cookie_for, signed_in_client
from tests.processes import HttpSession, child_env, daphne, run_burst_worker, wait_for_task, wait_until, worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_rqworker_process_runs_an_export_end_to_end(queue, smtp_server):
    user = UserFactory()
    PostFactory.create_batch(2500, author=user, body="Grüße 🌍")
    client = signed_in_client(user)

    response = client.post("/exports/", HTTP_ACCEPT="application/json")
    assert response.status_code == 202
    task_id = response.json()["id"]
    assert queue.job_ids == [task_id]

    result = run_burst_worker(child_env(EMAIL_URL=smtp_server.url))
    assert result.returncode == 0, result.stdout + result.stderr

    status = client.get(f"/api/tasks/{task_id}/").json()
    assert status["status"] == "succeeded", status
    assert status["progress"] == 100
    assert status["download_url"] == f"/tasks/{task_id}/download/"

    download = client.get(status["download_url"])
    # A FileResponse: django-stubs types the test client's responses as HttpResponse.
    data = json.loads(b"".join(download.streaming_content))  # type: ignore[attr-defined]
    assert data["count"] == 2500 and len(data["posts"]) == 2500
    assert {p["body"] for p in data["posts"]} == {"Grüße 🌍"}

    (message,) = smtp_server.messages
    assert message["To"] == user.email
    attachments = [part for part in message.walk() if part.get_filename()]
    assert [part.get_filename() for part in attachments] == [f"posts-{user.username}-{date.today():%Y-%m-%d}.json.gz"]
    assert json.loads(gzip.decompress(attachments[0].get_payload(decode=True))) == data
    assert Task.objects.get(pk=task_id).finished_at is not None


HOLD = 1.5  # seconds daphne keeps each launch's transaction open after the view answered


def test_the_job_is_enqueued_only_once_the_launch_has_committed(queue, smtp_server):
    """End to end: a worker already waits on the queue while daphne holds the launch's transaction
    open (tests/middleware.py). A job enqueued before the commit would reach it at once, find no
    queued task (it is not committed yet) and skip it, leaving the export queued for ever."""
    user = UserFactory()
    PostFactory.create_batch(3, author=user)
    with (
        worker(child_env(EMAIL_URL=smtp_server.url)),
        daphne(child_env(TEST_HOLD_COMMIT_SECONDS=str(HOLD))) as (port, _),
    ):
        wait_until(lambda: Worker.all(queue=queue), interval=0.05)  # listening before the launch
        site = HttpSession(port, session_cookie_for(user))
        site.request("GET", "/exports/")  # the CSRF cookie first, so the timed POST is the launch alone
        sent = datetime.now(UTC)
        status, body = site.request("POST", "/exports/", json_client=True)
        assert status == 202, body
        assert datetime.now(UTC) - sent >= timedelta(seconds=HOLD), "the launch's commit was held"
        task = wait_for_task(json.loads(body)["id"], lambda t: t.is_finished, 60)
    # On SQLite the worker's UPDATE would wait for daphne's write lock and so hide an early
    # enqueue; the job's own record says when it was queued, on every database.
    job = task_job_fetch(str(task.id))
    assert job is not None and job.enqueued_at is not None
    enqueued_at = job.enqueued_at.replace(tzinfo=job.enqueued_at.tzinfo or UTC)
    assert enqueued_at - sent >= timedelta(seconds=HOLD), "queued only once the transaction committed"
    assert task.status == Task.Status.SUCCEEDED, task.error
    assert [m["To"] for m in smtp_server.messages] == [user.email]

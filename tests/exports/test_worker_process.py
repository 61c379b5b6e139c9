"""The whole path with the real programs: HTTP launch, `manage.py rqworker default`, SMTP."""

from __future__ import annotations

import gzip
import json
from datetime import date

import pytest
from django.test import Client

from tasks.models import Task
from tests.factories import PostFactory, UserFactory, login
from tests.processes import child_env, run_burst_worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_rqworker_process_runs_an_export_end_to_end(queue, smtp_server):
    user = UserFactory()
    PostFactory.create_batch(2500, author=user, body="Grüße 🌍")
    client = Client()
    assert login(client, user.username)

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

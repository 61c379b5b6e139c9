"""Abuse limits on launching exports and on stored results, on this site's daphne and pages (the
limits themselves, for any kind: tests/library/test_limits.py).

- launches per user per window: 429 with Retry-After, JSON `{"error"}` or the page with a message;
- stored result bytes per user: a launch that would pass the quota gets 409 and says why;
- the defaults never stop a person using the site normally.
"""

from __future__ import annotations

import json

import pytest
from django.core.files.storage import default_storage
from django.test import Client

from live_tasks.models import Task
from tests.factories import PostFactory, UserFactory, session_cookie_for
from tests.processes import HttpSession, child_env, daphne, run_burst_worker

JSON: dict = {
    "HTTP_ACCEPT": "application/json"
}  # extra headers: dict[str, str] would clash with Client's typed options


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_launches_past_the_limit_get_429_with_retry_after_and_a_message():
    user, other = UserFactory(), UserFactory()
    env = child_env(TASK_LAUNCH_LIMIT="3", TASK_LAUNCH_WINDOW_SECONDS="60")
    with daphne(env) as (port, _):
        site = HttpSession(port, session_cookie_for(user))
        for _ in range(3):  # launch + cancel, as the attacker did
            status, body = site.request("POST", "/exports/", json_client=True)
            assert status == 202
            status, _ = site.request("POST", f"/exports/{json.loads(body)['id']}/cancel/", json_client=True)
            assert status == 200

        status, body = site.request("POST", "/exports/", json_client=True)
        assert status == 429
        assert "too many tasks" in json.loads(body)["error"]
        assert 1 <= int(site.last_headers["Retry-After"]) <= 60

        status, body = site.request("POST", "/exports/")  # the HTML form
        assert status == 429 and 1 <= int(site.last_headers["Retry-After"]) <= 60
        assert b"You started too many tasks in a short time" in body
        assert b'id="export-button"' in body, "the page itself, with the message on it"

        assert Task.objects.filter(user=user).count() == 3, "refused launches leave no task"
        status, _ = HttpSession(port, session_cookie_for(other)).request("POST", "/exports/", json_client=True)
        assert status == 202, "the limit is per user"


@pytest.mark.django_db
def test_the_default_limit_lets_a_person_launch_and_cancel_ten_times_in_a_minute(user, client_for, queue):
    client = client_for(user)
    for _ in range(10):
        response = client.post("/exports/", **JSON)
        assert response.status_code == 202, response.content
        assert client.post(f"/exports/{response.json()['id']}/cancel/", **JSON).status_code == 200


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_launch_that_would_pass_the_storage_quota_is_refused_with_409(settings, smtp_server):
    user = UserFactory()
    PostFactory.create_batch(300, author=user)
    client = Client()
    client.cookies["sessionid"] = session_cookie_for(user)
    worker_env = child_env(EMAIL_URL=smtp_server.url)

    first = client.post("/exports/", **JSON).json()
    assert run_burst_worker(worker_env).returncode == 0
    done = Task.objects.get(pk=first["id"])
    assert done.status == "succeeded"
    assert done.file_size == default_storage.size(done.file.name) > 0, "the row knows its file's size"

    # Stored: one file. The next export will be about as large: 2 files must fit.
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "RESULT_QUOTA_BYTES": int(done.file_size * 1.5)}
    response = client.post("/exports/", **JSON)
    assert response.status_code == 409
    error = response.json()["error"]
    assert "Your stored files take" in error and "this one would pass it" in error and "7 days" in error
    page = client.post("/exports/")
    assert page.status_code == 409 and "Your stored files take" in page.content.decode()
    assert Task.objects.filter(user=user).count() == 1

    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "RESULT_QUOTA_BYTES": done.file_size * 2}
    assert client.post("/exports/", **JSON).status_code == 202, "within the quota again"

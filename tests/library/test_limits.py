"""The limits on what one user can make the server do, for any kind: launches per window (429 with
Retry-After) and stored result bytes (409), each saying why; staff acting for a user are not counted."""

from __future__ import annotations

import pytest

from live_tasks.models import Task
from live_tasks.services import task_start

from .helpers import run_queued_jobs

JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.mark.django_db
def test_launches_past_the_limit_get_429_with_retry_after_and_leave_no_task(
    settings, user, other_user, client_for, queue
):
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "LAUNCH_LIMIT": 3, "LAUNCH_WINDOW_SECONDS": 60}
    client = client_for(user)
    for _ in range(3):  # launch and cancel, as an attacker would
        launched = client.post("/steps/", **JSON)
        assert launched.status_code == 202
        assert client.post(launched.json()["cancel_url"], **JSON).status_code == 200

    refused = client.post("/steps/", **JSON)
    assert refused.status_code == 429
    assert "too many tasks" in refused.json()["error"]
    assert 1 <= int(refused["Retry-After"]) <= 60
    form = client.post("/steps/")  # the form: sent back to a page that says why
    assert form.status_code == 302, "a redirect stays one: browsers follow no Location of a 429"
    assert "You started too many tasks in a short time" in client.get(form["Location"]).content.decode()
    assert Task.objects.filter(user=user).count() == 3
    assert client_for(other_user).post("/steps/", **JSON).status_code == 202, "the limit is per user"


@pytest.mark.django_db
def test_staff_retrying_a_users_task_is_not_counted_against_them(settings, user, queue):
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "LAUNCH_LIMIT": 0}
    assert task_start(user=user, kind="test_steps", limited=False).status == "queued"


@pytest.mark.django_db(transaction=True)
def test_a_launch_that_would_pass_the_storage_quota_is_refused_with_409(settings, user, client_for, queue):
    client = client_for(user)
    first = client.post("/steps/", {"steps": 1, "with_file": "1"}, **JSON).json()
    run_queued_jobs()
    done = Task.objects.get(pk=first["id"])
    assert done.status == "succeeded" and done.file_size

    # One file stored; the next of its kind is as large: two must fit.
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "RESULT_QUOTA_BYTES": int(done.file_size * 1.5)}
    refused = client.post("/steps/", {"with_file": "1"}, **JSON)
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert "Your stored files take" in error and "this one would pass it" in error and "7 days" in error
    assert Task.objects.filter(user=user).count() == 1

    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "RESULT_QUOTA_BYTES": done.file_size * 2}
    assert client.post("/steps/", **JSON).status_code == 202, "within the quota again"

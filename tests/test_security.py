"""The security matrix in one place: every URL against anonymous users, CSRF, and other users."""

from __future__ import annotations

import pytest
from django.test import Client

from tasks.models import Task
from tests.factories import TaskFactory

TASK_PAGES = ["/exports/{id}/", "/exports/{id}/download/", "/api/tasks/{id}/"]
TASK_ACTIONS = ["/exports/{id}/cancel/"]
PAGES = ["/", "/posts/", "/exports/", "/admin/tasks/task/", "/django-rq/"] + TASK_PAGES


@pytest.fixture
def task(user):
    return TaskFactory(user=user, status=Task.Status.SUCCEEDED, file="exports/x.json")


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_visitors_are_sent_to_a_login_page(url, task):
    response = Client().get(url.format(id=task.id))
    if url.startswith("/api/"):
        assert response.status_code == 401
    else:
        assert response.status_code == 302
        assert response["Location"].startswith(("/accounts/login/", "/admin/login/", "/exports/"))


@pytest.mark.parametrize("url", ["/posts/", "/exports/", *TASK_ACTIONS])
def test_anonymous_posts_change_nothing(url, task):
    response = Client().post(url.format(id=task.id), {"body": "x"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    task.refresh_from_db()
    assert task.status == Task.Status.SUCCEEDED and Task.objects.count() == 1


@pytest.mark.parametrize("url", TASK_PAGES + TASK_ACTIONS)
def test_another_users_task_is_404_everywhere(url, task, other_user, client_for):
    client = client_for(other_user)
    method = client.post if url in TASK_ACTIONS else client.get
    assert method(url.format(id=task.id)).status_code == 404


@pytest.mark.parametrize("url", TASK_PAGES + TASK_ACTIONS)
@pytest.mark.parametrize("bad_id", ["not-a-uuid", "1", "..%2F..%2Fetc%2Fpasswd", "0" * 40])
def test_ids_that_are_not_uuids_are_404(url, bad_id, user_client):
    method = user_client.post if url in TASK_ACTIONS else user_client.get
    assert method(url.replace("{id}", bad_id)).status_code == 404


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/accounts/login/", {"username": "u", "password": "p"}),
        ("/accounts/signup/", {"username": "n", "email": "n@example.com", "password1": "x", "password2": "x"}),
        ("/accounts/logout/", {}),
        ("/posts/", {"body": "hello"}),
        ("/exports/", {}),
        ("/exports/{id}/cancel/", {}),
    ],
)
def test_every_form_requires_a_csrf_token(url, data, user, client_for, queue):
    queued = TaskFactory(user=user)
    client = client_for(user, enforce_csrf_checks=True)
    response = client.post(url.format(id=queued.id), data)
    assert response.status_code == 403
    queued.refresh_from_db()
    assert queued.status == Task.Status.QUEUED and Task.objects.count() == 1
    assert not user.posts.exists()

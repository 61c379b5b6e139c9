"""Deleting a finished task and clearing finished ones: the rows and their files go, unfinished
tasks are refused, and every open page is told (a `task_deleted` message, docs/protocol.md)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.shortcuts import resolve_url
from django.test import Client
from django.utils import timezone

from live_tasks.conf import live_settings
from live_tasks.models import Task
from live_tasks.services import TaskNotDeletable, task_delete, task_start, tasks_delete_finished

from .helpers import LiveFeed, StaffFactory, TaskFactory, UserFactory, run_queued_jobs
from .testapp.kinds import TEST_STEPS

JSON = {"HTTP_ACCEPT": "application/json"}


def finished_with_file(user, queue) -> Task:
    task = task_start(user=user, kind=TEST_STEPS, params={"steps": 1, "with_file": True})
    run_queued_jobs()
    task.refresh_from_db()
    assert task.status == Task.Status.SUCCEEDED and default_storage.exists(task.file.name)
    return task


@pytest.mark.django_db(transaction=True)
def test_deleting_a_finished_task_removes_its_file_and_every_open_page_is_told(queue, client_for):
    user, staff = UserFactory(), StaffFactory()
    task = finished_with_file(user, queue)
    assert task.file_size == len(f"the result of {task.id}"), "the size is recorded when it succeeds"
    stored = task.file.name

    with LiveFeed(user) as owner_page, LiveFeed(staff, path=f"{live_settings.WEBSOCKET_PATH}?scope=all") as admin_page:
        response = client_for(user).post(f"/tasks/{task.id}/delete/", {"next": "/tasks/"})
        removed = {"type": "task_deleted", "id": str(task.id)}
        owner_page.wait_for(lambda m: m == removed)
        admin_page.wait_for(lambda m: m == removed)

    assert response.status_code == 302 and response["Location"] == "/tasks/"
    assert not Task.objects.filter(pk=task.pk).exists()
    assert not default_storage.exists(stored)
    assert client_for(user).get(f"/tasks/{task.id}/").status_code == 404


@pytest.mark.parametrize("status", [Task.Status.QUEUED, Task.Status.RUNNING])
def test_an_unfinished_task_cannot_be_deleted(user, user_client, status):
    task = TaskFactory(user=user, status=status)
    with pytest.raises(TaskNotDeletable, match="cancel it first"):
        task_delete(task=task)
    response = user_client.post(f"/tasks/{task.id}/delete/", **JSON)
    assert response.status_code == 409 and response.json()["id"] == str(task.id)
    assert Task.objects.filter(pk=task.pk).exists()


def test_a_task_whose_cleanup_is_owed_is_kept_until_it_is_done(user):
    # Cancelled a moment ago: its job may still be stopping, and the safety net finds the
    # leftovers through this row.
    task = TaskFactory(user=user, status=Task.Status.CANCELLED, needs_cleanup=True, finished_at=timezone.now())
    with pytest.raises(TaskNotDeletable, match="still being cleaned up"):
        task_delete(task=task)
    assert tasks_delete_finished(user=user) == 0
    assert Task.objects.filter(pk=task.pk).exists()


def test_another_users_task_cannot_be_deleted(user, client_for):
    theirs = TaskFactory(status=Task.Status.FAILED, finished_at=timezone.now())
    assert client_for(user).post(f"/tasks/{theirs.id}/delete/").status_code == 404
    assert Task.objects.filter(pk=theirs.pk).exists()


def test_delete_and_clear_need_a_signed_in_post_with_a_csrf_token(user, client_for):
    task = TaskFactory(user=user, status=Task.Status.FAILED, finished_at=timezone.now())
    assert Client().post(f"/tasks/{task.id}/delete/")["Location"].startswith(resolve_url(settings.LOGIN_URL))
    strict = client_for(user, enforce_csrf_checks=True)
    assert strict.post(f"/tasks/{task.id}/delete/").status_code == 403
    assert strict.post("/tasks/delete-finished/").status_code == 403
    assert client_for(user).get(f"/tasks/{task.id}/delete/").status_code == 405
    assert Task.objects.filter(pk=task.pk).exists()

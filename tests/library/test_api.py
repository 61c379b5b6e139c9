"""The JSON task API and who may see which task: owners only, 404 for everyone else."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from live_tasks.models import Task

from .contract import TASK_KEYS
from .helpers import StaffFactory, TaskFactory

JSON: dict = {
    "HTTP_ACCEPT": "application/json"
}  # extra headers: dict[str, str] would clash with Client's typed options


def ago(**kwargs):
    return timezone.now() - timedelta(**kwargs)


def test_task_list_has_only_my_tasks_newest_first(user_client, user, other_user):
    oldest = TaskFactory(user=user, status=Task.Status.FAILED, error="Boom.", created_at=ago(days=2))
    newest = TaskFactory(user=user, status=Task.Status.RUNNING, progress=40, created_at=ago(minutes=1))
    middle = TaskFactory(user=user, status=Task.Status.SUCCEEDED, progress=100, created_at=ago(hours=3))
    TaskFactory(user=other_user, status=Task.Status.QUEUED, created_at=ago(seconds=1))

    response = user_client.get("/tasks/api/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    tasks = response.json()["tasks"]
    assert [t["id"] for t in tasks] == [str(newest.id), str(middle.id), str(oldest.id)]
    assert all(set(t) == TASK_KEYS for t in tasks)
    running = tasks[0]
    assert running["status"] == "running" and running["progress"] == 40 and running["kind"] == "test_steps"
    assert running["download_url"] is None
    assert tasks[2]["error"] == "Boom."


def test_task_list_is_empty_for_a_user_without_tasks(user_client, other_user):
    TaskFactory(user=other_user)
    response = user_client.get("/tasks/api/")
    assert response.status_code == 200
    assert response.json() == {"tasks": [], "count": 0, "page": 1, "pages": 1, "next": None, "previous": None}


def test_task_detail_for_my_own_task(user_client, user):
    created = ago(minutes=5)
    task = TaskFactory(
        user=user,
        status=Task.Status.SUCCEEDED,
        progress=100,
        seq=7,
        detail="3 posts exported",
        file=f"exports/{user.pk}/x.json",
        file_size=2048,
        created_at=created,
        started_at=created + timedelta(seconds=1),
        finished_at=created + timedelta(seconds=2),
    )

    response = user_client.get(f"/tasks/api/{task.id}/")

    assert response.status_code == 200
    assert response.json() == {
        "id": str(task.id),
        "kind": "test_steps",
        "label": "Test steps",
        "status": "succeeded",
        "status_display": "Succeeded",
        "progress": 100,
        "seq": 7,
        "detail": "3 posts exported",
        "error": "",
        "url": f"/tasks/{task.id}/",
        "cancel_url": None,
        "download_url": f"/tasks/{task.id}/download/",
        "file_size": 2048,
        "delete_url": f"/tasks/{task.id}/delete/",
        "user": user.username,
        "created_at": created.isoformat(),
        "started_at": (created + timedelta(seconds=1)).isoformat(),
        "finished_at": (created + timedelta(seconds=2)).isoformat(),
        "expired_at": None,
    }


def test_queued_task_detail_has_null_times_and_no_download(user_client, user):
    task = TaskFactory(user=user)
    body = user_client.get(f"/tasks/api/{task.id}/").json()
    assert set(body) == TASK_KEYS
    assert body["status"] == "queued" and body["progress"] == 0
    assert body["started_at"] is None and body["finished_at"] is None and body["download_url"] is None
    assert body["delete_url"] is None, "an unfinished task cannot be deleted"
    assert body["file_size"] is None and body["expired_at"] is None


def test_the_task_list_is_paginated_and_says_how_to_get_every_page(user_client, user):
    """Docs: GET /tasks/api/ has every task, TASKS_PER_PAGE a page, newest first, with next/previous."""
    tasks = [TaskFactory(user=user, status=Task.Status.FAILED, created_at=ago(minutes=i)) for i in range(53)]

    first = user_client.get("/tasks/api/").json()
    assert (first["count"], first["page"], first["pages"]) == (53, 1, 2)
    assert first["previous"] is None and first["next"] == "/tasks/api/?page=2"
    second = user_client.get(first["next"]).json()
    assert second["next"] is None and second["previous"] == "/tasks/api/?page=1"
    listed = [t["id"] for t in first["tasks"] + second["tasks"]]
    assert listed == [str(t.id) for t in tasks], "every task once, newest first"
    assert len(first["tasks"]) == 50


def test_staff_scope_all_sees_other_users_recent_tasks(client_for, user, other_user):
    staff = StaffFactory()
    queued = TaskFactory(user=user, created_at=ago(days=3))  # unfinished: shown however old
    just_failed = TaskFactory(
        user=other_user, status=Task.Status.FAILED, created_at=ago(minutes=10), finished_at=ago(minutes=5)
    )
    TaskFactory(user=other_user, status=Task.Status.SUCCEEDED, created_at=ago(days=2), finished_at=ago(days=2))

    response = client_for(staff).get("/tasks/api/?scope=all")

    assert response.status_code == 200
    tasks = response.json()["tasks"]
    assert [t["id"] for t in tasks] == [str(just_failed.id), str(queued.id)]
    assert all(set(t) == TASK_KEYS for t in tasks)
    # Without the scope, staff see their own (here: no) tasks like everyone else.
    assert client_for(staff).get("/tasks/api/").json()["tasks"] == []


def test_non_staff_scope_all_sees_only_own_tasks(user_client, user, other_user):
    mine = TaskFactory(user=user)
    TaskFactory(user=other_user)
    TaskFactory(user=other_user, status=Task.Status.FAILED, finished_at=timezone.now())

    response = user_client.get("/tasks/api/?scope=all")

    assert response.status_code == 200
    assert [t["id"] for t in response.json()["tasks"]] == [str(mine.id)]


def test_api_is_read_only(user_client, user):
    task = TaskFactory(user=user)
    assert user_client.post("/tasks/api/").status_code == 405
    assert user_client.delete(f"/tasks/api/{task.id}/").status_code == 405
    assert Task.objects.get(pk=task.pk).status == Task.Status.QUEUED

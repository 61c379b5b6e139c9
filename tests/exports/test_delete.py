"""Deleting finished tasks from this site's pages: the export list offers it, and a deletion
returns to the kind's own list (the library's own tests: tests/library/test_delete.py)."""

from __future__ import annotations

from django.utils import timezone

from live_tasks.models import Task
from tests.factories import TaskFactory
from tests.library.testapp.kinds import TEST_STEPS

JSON = {"HTTP_ACCEPT": "application/json"}


def test_a_deleted_tasks_page_sends_the_user_to_its_kinds_list(user, user_client):
    task = TaskFactory(user=user, status=Task.Status.FAILED, finished_at=timezone.now())
    response = user_client.post(f"/exports/{task.id}/delete/")  # from its own page: no `next`
    assert response.status_code == 302 and response["Location"] == "/exports/"
    assert "Posts export deleted." in user_client.get("/exports/").content.decode()


def test_clear_finished_deletes_the_finished_ones_of_a_kind_only(user, user_client):
    done = timezone.now()
    failed = TaskFactory(user=user, status=Task.Status.FAILED, finished_at=done)
    succeeded = TaskFactory(user=user, status=Task.Status.SUCCEEDED, finished_at=done)
    running = TaskFactory(user=user, status=Task.Status.RUNNING)
    other_kind = TaskFactory(user=user, kind=TEST_STEPS, status=Task.Status.FAILED, finished_at=done)
    theirs = TaskFactory(status=Task.Status.FAILED, finished_at=done)

    response = user_client.post("/tasks/delete-finished/", {"kind": "export_posts", "next": "/exports/"})

    assert response.status_code == 302 and response["Location"] == "/exports/"
    assert not Task.objects.filter(pk__in=[failed.pk, succeeded.pk]).exists()
    assert set(Task.objects.values_list("pk", flat=True)) == {running.pk, other_kind.pk, theirs.pk}
    assert "Deleted 2 finished tasks." in user_client.get("/exports/").content.decode()
    assert user_client.post("/tasks/delete-finished/", **JSON).json() == {"deleted": 1}  # every kind: the test kind's


def test_lists_offer_delete_for_finished_tasks_and_clear(user, user_client):
    finished = TaskFactory(user=user, status=Task.Status.FAILED, finished_at=timezone.now())
    running = TaskFactory(user=user, status=Task.Status.RUNNING)
    page = user_client.get("/exports/").content.decode()
    assert f'action="/tasks/{finished.id}/delete/"' in page
    assert f'action="/tasks/{running.id}/delete/"' not in page
    assert 'action="/tasks/delete-finished/"' in page and "Delete finished exports" in page
    detail = user_client.get(f"/exports/{finished.id}/").content.decode()
    assert f'action="/tasks/{finished.id}/delete/"' in detail

"""The staff side: the read-only task admin and django-rq's dashboard."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from live_tasks.models import Task

from .helpers import StaffFactory, TaskFactory, UserFactory

CHANGELIST = "/admin/live_tasks/task/"


@pytest.fixture
def staff(db):
    """Staff who may watch every task (view_task) and nothing more."""
    staff = StaffFactory()
    assert not staff.is_superuser and not staff.groups.exists()
    assert list(staff.user_permissions.values_list("codename", flat=True)) == ["view_task"]
    return staff


@pytest.fixture
def superuser(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def tasks(db):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    now = timezone.now()
    return {
        "alice_failed": TaskFactory(
            user=alice,
            status=Task.Status.FAILED,
            progress=12,
            error="The export timed out.",
            created_at=now - timedelta(hours=2),
            finished_at=now - timedelta(hours=1),
        ),
        "alice_running": TaskFactory(user=alice, status=Task.Status.RUNNING, progress=55, created_at=now),
        "bob_succeeded": TaskFactory(
            user=bob,
            status=Task.Status.SUCCEEDED,
            progress=100,
            file="exports/2/b.json",
            created_at=now - timedelta(minutes=30),
            started_at=now - timedelta(minutes=30),
            finished_at=now - timedelta(minutes=29),
        ),
    }


def listed_ids(response) -> list[str]:
    """Task ids in the order of the change list's rows (each row carries one progress bar)."""
    assert response.status_code == 200
    return re.findall(r'<div class="task" data-task-id="([0-9a-f-]{36})"', response.content.decode())


@pytest.mark.parametrize("who", ["staff", "superuser"])
def test_staff_and_superusers_see_every_users_tasks_with_progress_bars(request, client_for, tasks, who):
    client = client_for(request.getfixturevalue(who))

    response = client.get(CHANGELIST)

    assert listed_ids(response) == [
        str(tasks["alice_running"].id),
        str(tasks["bob_succeeded"].id),
        str(tasks["alice_failed"].id),
    ]
    page = response.content.decode()
    for task in tasks.values():
        row = re.search(rf'data-task-id="{task.id}".*?</div>\s*</div>', page, re.S)
        assert row and re.search(
            rf'<progress class="task-bar" data-field="bar" max="100" value="{task.progress}"', page
        )
    assert "The export timed out." in page
    assert "1 min 0 s" in page, "the duration of bob's task"
    # The staff feed keeps the list live: the task, and the finished and duration columns too.
    assert re.search(r'<script src="/static/live_tasks/live\.js"[^>]*data-scope="all"', page)
    bob = tasks["bob_succeeded"]
    finished = f'<time data-field="finished" datetime="{bob.finished_at.isoformat()}">'
    assert re.search(rf'<span class="task-cell" data-task-id="{bob.id}"[^>]*>{re.escape(finished)}', page)
    assert re.search(rf'data-task-id="{bob.id}"[^>]*><span data-field="duration">1 min 0 s</span>', page)
    assert f'<time datetime="{bob.created_at.isoformat()}">{bob.created_at:%Y-%m-%d %H:%M:%S} UTC</time>' in page
    # New tasks join the unfiltered first page: the row that live.js clones is there.
    assert "data-admin-task-rows" in page and '<template id="admin-task-row">' in page


def test_the_admin_index_lists_tasks_for_staff_who_may_view_them(client_for, staff):
    response = client_for(staff).get("/admin/")
    assert response.status_code == 200
    assert f'href="{CHANGELIST}"' in response.content.decode()


def test_staff_without_the_view_permission_see_no_task_of_anyone_else(db, client_for, tasks):
    client = client_for(StaffFactory(permissions=[]))
    assert client.get(CHANGELIST).status_code == 403
    assert f'href="{CHANGELIST}"' not in client.get("/admin/").content.decode()
    assert 'href="/admin/live_tasks/task/"' not in client.get("/tasks/").content.decode(), "no Admin link"
    assert client.get("/tasks/api/?scope=all").json()["tasks"] == [], "their own tasks only: none"


def _act(client, action, task):
    return client.post(CHANGELIST, {"action": action, "_selected_action": [task.id]}, follow=True)


@pytest.mark.parametrize("action", ["cancel_tasks", "retry_tasks"])
def test_watching_staff_are_offered_no_action_and_a_forged_one_does_nothing(client_for, staff, tasks, queue, action):
    client = client_for(staff)
    page = client.get(CHANGELIST).content.decode()
    assert 'value="cancel_tasks"' not in page and 'value="retry_tasks"' not in page

    response = _act(client, action, tasks["alice_running"])

    assert response.status_code == 200
    assert b"Cancelled 1 task" not in response.content and b"Started 1 new task" not in response.content
    assert Task.objects.get(pk=tasks["alice_running"].pk).status == Task.Status.RUNNING
    assert Task.objects.count() == 3, "nothing was retried"


def test_each_action_needs_its_own_permission(db, client_for, tasks, queue, django_capture_on_commit_callbacks):
    cancelling = client_for(StaffFactory(permissions=["view_task", "cancel_task"]))
    page = cancelling.get(CHANGELIST).content.decode()
    assert 'value="cancel_tasks"' in page and 'value="retry_tasks"' not in page
    assert b"Cancelled 1 task." in _act(cancelling, "cancel_tasks", tasks["alice_running"]).content
    assert Task.objects.get(pk=tasks["alice_running"].pk).status == Task.Status.CANCELLED
    assert b"No action selected." in _act(cancelling, "retry_tasks", tasks["alice_failed"]).content

    retrying = client_for(StaffFactory(permissions=["view_task", "retry_task"]))
    page = retrying.get(CHANGELIST).content.decode()
    assert 'value="retry_tasks"' in page and 'value="cancel_tasks"' not in page
    with django_capture_on_commit_callbacks(execute=True):
        assert b"Started 1 new task." in _act(retrying, "retry_tasks", tasks["alice_failed"]).content
    assert Task.objects.filter(user=tasks["alice_failed"].user, status=Task.Status.QUEUED).count() == 1


def test_filter_by_status(client_for, staff, tasks):
    response = client_for(staff).get(CHANGELIST + "?status__exact=failed")
    assert listed_ids(response) == [str(tasks["alice_failed"].id)]
    assert "data-admin-task-rows" not in response.content.decode(), "a filtered list takes no new rows live"
    response = client_for(staff).get(CHANGELIST + "?status__exact=cancelled")
    assert listed_ids(response) == []


def test_filter_by_kind(client_for, staff, tasks):
    response = client_for(staff).get(CHANGELIST + "?kind__exact=test_steps")
    assert sorted(listed_ids(response)) == sorted(str(t.id) for t in tasks.values())
    page = response.content.decode()
    assert "By status" in page and "By kind" in page


def test_search_by_username(client_for, staff, tasks):
    response = client_for(staff).get(CHANGELIST + "?q=bob")
    assert listed_ids(response) == [str(tasks["bob_succeeded"].id)]
    response = client_for(staff).get(CHANGELIST + "?q=alice")
    assert listed_ids(response) == [str(tasks["alice_running"].id), str(tasks["alice_failed"].id)]
    response = client_for(staff).get(CHANGELIST + "?q=nobody")
    assert listed_ids(response) == []


def test_filters_and_search_combine(client_for, staff, tasks):
    response = client_for(staff).get(CHANGELIST + "?q=alice&status__exact=running&kind__exact=test_steps")
    assert listed_ids(response) == [str(tasks["alice_running"].id)]


@pytest.mark.parametrize("who", ["staff", "superuser"])
def test_change_page_is_read_only(request, client_for, tasks, who):
    client = client_for(request.getfixturevalue(who))
    task = tasks["alice_failed"]
    url = f"{CHANGELIST}{task.id}/change/"

    response = client.get(url)

    assert response.status_code == 200
    page = response.content.decode()
    assert "The export timed out." in page
    created = task.created_at.isoformat()
    assert f'<time datetime="{created}">{task.created_at:%Y-%m-%d %H:%M:%S} UTC</time>' in page, "one time format"
    assert "live_tasks/live.js" in page, "which shows it in the reader's zone, as on the list"
    assert 'name="_save"' not in page and 'name="_continue"' not in page
    assert "<textarea" not in page and 'name="status"' not in page and 'name="progress"' not in page

    response = client.post(url, {"status": "succeeded", "progress": "100", "error": "", "_save": "Save"})
    assert response.status_code == 403
    task_after = Task.objects.get(pk=task.pk)
    assert (task_after.status, task_after.progress, task_after.error, task_after.seq) == (
        Task.Status.FAILED,
        12,
        "The export timed out.",
        task.seq,
    )


@pytest.mark.parametrize("who", ["staff", "superuser"])
def test_adding_a_task_is_forbidden(request, client_for, tasks, who):
    client = client_for(request.getfixturevalue(who))
    assert client.get(f"{CHANGELIST}add/").status_code == 403
    user = tasks["alice_failed"].user
    assert client.post(f"{CHANGELIST}add/", {"user": user.pk, "kind": "test_steps"}).status_code == 403
    assert Task.objects.count() == 3
    assert 'href="/admin/live_tasks/task/add/"' not in client.get(CHANGELIST).content.decode()


def test_staff_with_an_explicit_change_permission_still_cannot_edit(client_for, staff, tasks):
    staff.user_permissions.add(Permission.objects.get(codename="change_task"))
    task = tasks["alice_running"]
    response = client_for(staff).post(f"{CHANGELIST}{task.id}/change/", {"status": "cancelled"})
    assert response.status_code == 403
    assert Task.objects.get(pk=task.pk).status == Task.Status.RUNNING


@pytest.mark.parametrize("url", [CHANGELIST, "/admin/"])
def test_non_staff_is_sent_to_the_admin_login(user_client, tasks, url):
    response = user_client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={url}"


def test_non_staff_cannot_open_a_task_change_page(user_client, tasks):
    url = f"{CHANGELIST}{tasks['bob_succeeded'].id}/change/"
    response = user_client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")

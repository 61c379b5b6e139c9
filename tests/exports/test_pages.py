"""The export pages a signed-in user sees: the list, one task's live block, and the base layout."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.utils import timezone

from live_tasks.models import Task
from tests.factories import TaskFactory

LIVE_SCRIPT = re.compile(r'<script src="/static/live_tasks/live\.js"[^>]*data-api-url="/tasks/api/"')
RUNNING_TASKS = re.compile(r'<section id="running-tasks"[^>]*aria-label="Running tasks"[^>]*hidden')
TASK_TEMPLATE = re.compile(r'<template id="task-template">\s*<div class="task" data-task-id="" data-kind=""')


def ago(**kwargs):
    return timezone.now() - timedelta(**kwargs)


def html(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


def element(page: str, data_field: str) -> str:
    """The opening tag and text of the (first) element carrying data-field="<data_field>"."""
    match = re.search(rf'<(\w+)[^>]*data-field="{data_field}"[^>]*>([^<]*)', page)
    assert match, f'no data-field="{data_field}" element'
    return match.group(0)


def test_export_list_shows_my_tasks_newest_first(user_client, user, other_user):
    old = TaskFactory(user=user, status=Task.Status.FAILED, created_at=ago(days=3))
    new = TaskFactory(user=user, status=Task.Status.RUNNING, progress=30, created_at=ago(minutes=2))
    middle = TaskFactory(user=user, status=Task.Status.SUCCEEDED, progress=100, created_at=ago(hours=5))
    theirs = TaskFactory(user=other_user, created_at=ago(minutes=1))

    page = html(user_client.get("/exports/"))

    rows = re.findall(r'<div class="task" data-task-id="([0-9a-f-]{36})"', page)
    assert rows == [str(new.id), str(middle.id), str(old.id)]
    assert str(theirs.id) not in page
    assert page.count(f'href="/exports/{new.id}/"') == 1, "one link per row to the task's page"
    assert "Running" in page and "30%" in page
    assert 'id="export-button"' in page


def test_export_list_without_tasks_says_so(user_client, other_user):
    TaskFactory(user=other_user)
    page = html(user_client.get("/exports/"))
    listed = page.split("data-task-list", 1)[1].split("</main>", 1)[0]
    assert "No exports yet." in listed and "data-task-list-empty>" in listed, "the empty notice is shown"
    assert re.search(r'data-task-id="[0-9a-f]', listed) is None


def test_task_page_shows_an_accessible_progress_bar_and_the_detail(user_client, user):
    task = TaskFactory(user=user, status=Task.Status.RUNNING, progress=42, seq=5, detail="4,200 of 10,000 posts")

    page = html(user_client.get(f"/exports/{task.id}/"))

    bar = re.search(r"<progress[^>]*>", page)
    assert bar, "a <progress> element (role progressbar, natively)"
    assert 'value="42"' in bar.group(0) and 'max="100"' in bar.group(0)
    assert "aria-label=" in bar.group(0)
    assert f'data-task-id="{task.id}"' in page and 'data-seq="5"' in page
    assert element(page, "detail").endswith(">4,200 of 10,000 posts")
    assert element(page, "percent").endswith(">42%")
    assert element(page, "status").endswith(">Running")
    # Nothing went wrong and nothing is ready yet: both blocks are there (for live.js) but hidden.
    assert " hidden" in element(page, "error")
    assert " hidden" in element(page, "download")


def test_task_page_shows_the_error_of_a_failed_task(user_client, user):
    task = TaskFactory(
        user=user,
        status=Task.Status.FAILED,
        progress=17,
        error="The export file could not be stored.",
        finished_at=timezone.now(),
    )

    page = html(user_client.get(f"/exports/{task.id}/"))

    error = element(page, "error")
    assert error.endswith(">The export file could not be stored.")
    assert " hidden" not in error
    assert element(page, "status").endswith(">Failed")
    assert " hidden" in element(page, "download")
    assert f'href="/tasks/{task.id}/download/"' not in page


def test_task_page_links_to_the_download_of_a_succeeded_task(user_client, user):
    task = TaskFactory(
        user=user,
        status=Task.Status.SUCCEEDED,
        progress=100,
        detail="12 posts exported",
        file=f"exports/{user.pk}/{'a' * 8}.json",
        finished_at=timezone.now(),
    )

    page = html(user_client.get(f"/exports/{task.id}/"))

    assert " hidden" not in element(page, "download")
    assert f'<a href="/tasks/{task.id}/download/" download>Download the file</a>' in page
    assert 'value="100"' in page
    assert element(page, "detail").endswith(">12 posts exported")
    assert " hidden" in element(page, "error")


def test_task_text_is_escaped(user_client, user):
    task = TaskFactory(user=user, status=Task.Status.FAILED, detail="<b>detail</b>", error="<script>alert(1)</script>")
    page = html(user_client.get(f"/exports/{task.id}/"))
    assert "<script>alert(1)</script>" not in page and "<b>detail</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;detail&lt;/b&gt;" in page


@pytest.mark.parametrize("path", ["/exports/", "/posts/", "/exports/{id}/"])
def test_signed_in_layout_has_the_running_tasks_container_and_live_script(user_client, user, path):
    task = TaskFactory(user=user)
    page = html(user_client.get(path.format(id=task.id)))
    assert RUNNING_TASKS.search(page)
    assert LIVE_SCRIPT.search(page)
    assert TASK_TEMPLATE.search(page), "the blank task that live.js clones"
    assert 'data-ws-path="/ws/notifications/"' in page
    assert 'data-scope="all"' not in page, "the site's pages follow the user's own tasks only"


def test_anonymous_layout_has_neither(db):
    page = html(Client().get("/accounts/login/"))
    assert 'id="running-tasks"' not in page
    assert "live.js" not in page


def test_the_live_script_the_layout_points_at_exists():
    assert finders.find("live_tasks/live.js")


# --- Pages of tasks ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/exports/", "/tasks/"])
def test_long_lists_are_paged_and_only_the_first_page_takes_new_tasks_live(user_client, user, path):
    tasks = [TaskFactory(user=user, status=Task.Status.FAILED, created_at=ago(minutes=i)) for i in range(120)]

    first = html(user_client.get(path))
    assert re.findall(r'<div class="task" data-task-id="([0-9a-f-]{36})"', first) == [str(t.id) for t in tasks[:50]]
    assert "Page 1 of 3 (120 in all)" in first and 'href="?page=2">Older' in first
    assert re.search(r'data-task-list data-kind="[a-z_]*" data-page-size="50">', first), "live, 50 a page"

    last = html(user_client.get(path + "?page=3"))
    assert len(re.findall(r'<div class="task" data-task-id="[0-9a-f]', last)) == 20
    assert "data-no-new" in last, "a new task belongs on page 1, not here"
    assert "Page 3 of 3" in html(user_client.get(path + "?page=99")), "past the end: the last page"


def test_times_are_rendered_once_in_utc_for_live_js_to_localize(user_client, user):
    task = TaskFactory(user=user, created_at=timezone.now().replace(microsecond=0))
    page = html(user_client.get("/exports/"))
    iso = task.created_at.isoformat()
    assert f'datetime="{iso}">{task.created_at:%Y-%m-%d %H:%M:%S} UTC</time>' in page

"""The library's own pages, with no template of the site's: the list (paged), one task with its live
bar, cancel and download, and sign-in required (README: "Install in your project")."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.shortcuts import resolve_url
from django.test import Client
from django.utils import timezone

from live_tasks.models import Task

from .helpers import TaskFactory


def test_the_list_page_is_paged_and_says_how_many_in_all(user, user_client):
    TaskFactory.create_batch(51, user=user, status=Task.Status.FAILED, finished_at=timezone.now())
    page = user_client.get("/tasks/").content.decode()
    assert "Page 1 of 2 (51 in all)" in page and 'href="?page=2"' in page
    assert page.count('class="task"') == 50 + 1, "a page of 50, and the blank task that live.js clones"


def test_a_running_tasks_page_has_its_live_bar_and_cancel(user, user_client):
    task = TaskFactory(user=user, status=Task.Status.RUNNING, progress=40, detail="Step 2 of 5")
    page = user_client.get(f"/tasks/{task.id}/").content.decode()
    assert 'value="40"' in page and "Step 2 of 5" in page
    assert f'action="/tasks/{task.id}/cancel/"' in page
    assert "live_tasks/live.js" in page and 'data-ws-path="/ws/tasks/"' in page


@pytest.mark.parametrize("path", ["/tasks/", "/tasks/00000000-0000-0000-0000-000000000000/"])
def test_the_pages_ask_an_anonymous_visitor_to_sign_in(db, path):
    response = Client().get(path)
    assert response.status_code == 302 and response["Location"].startswith(resolve_url(settings.LOGIN_URL))

"""The site's Recount page, built only on django.tasks' `@task` (recount/): launched for the user,
live on their socket (the running-tasks strip), run by the worker, read back with get_result."""

from __future__ import annotations

import pytest
from rq import SimpleWorker

from live_tasks.backends import DJANGO_TASK
from live_tasks.models import Task
from recount.tasks import recount_words
from tests.factories import PostFactory, UserFactory
from tests.library.helpers import LiveFeed


@pytest.mark.django_db(transaction=True)
def test_a_recount_is_the_users_live_and_counts_every_post(queue, client_for):
    user = UserFactory()
    PostFactory(author=user, body="the cat and the hat")
    PostFactory(author=user, body="The end")
    PostFactory(author=UserFactory(), body="not theirs at all")
    with LiveFeed(user) as feed:
        response = client_for(user).post("/recount/")
        task = Task.objects.get(kind=DJANGO_TASK)
        assert response.status_code == 302 and response["Location"] == f"/tasks/{task.id}/"
        assert task.user == user and task.params["args"] == [user.pk]
        feed.wait_for(lambda m: m["type"] == "task" and m["task"]["id"] == str(task.id))  # the strip shows it
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        feed.wait_for(lambda m: m["type"] == "task" and m["task"]["status"] == "succeeded")
    assert [m["status"] for m in feed.task_messages(task.id)][::-1][0] == "succeeded"
    assert {m["status"] for m in feed.task_messages(task.id)} == {"queued", "running", "succeeded"}
    assert {m["label"] for m in feed.task_messages(task.id)} == {"Recount words"}
    assert recount_words.get_result(str(task.id)).return_value == {"posts": 2, "words": 7}
    page = client_for(user).get("/recount/")
    assert page.status_code == 200 and str(task.id).encode() in page.content
    assert client_for(UserFactory()).get(f"/tasks/{task.id}/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_past_the_launch_limit_a_recount_is_refused_with_429_and_nothing_is_queued(queue, client_for, settings):
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "LAUNCH_LIMIT": 2}
    user = UserFactory()
    client = client_for(user)
    assert [client.post("/recount/").status_code for _ in range(2)] == [302, 302]

    refused = client.post("/recount/")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert b"Recount my posts" in refused.content, "the page again, saying why"
    assert Task.objects.filter(kind=DJANGO_TASK, user=user).count() == 2
    assert queue.count == 2
    api = client.post("/recount/", HTTP_ACCEPT="application/json")
    assert api.status_code == 429 and "error" in api.json()

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

"""Many users launching at once into a freshly started daphne, over a slow Redis: none gets a 500.

daphne runs each request's sync view in a thread of its own, so the first launches after a start
all ask for the process's Redis client and queue at the same moment (redisclients). A slow Redis
(a proxy on loopback that holds each reply) keeps each launch's round trips in flight long enough
for a client closed under another thread to show, as it did once in tests/test_scale_out.py.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.middleware.csrf import _get_new_csrf_string

from live_tasks.models import Task
from tests.factories import UserFactory, session_cookie_for
from tests.processes import HttpSession, SlowProxy, child_env, daphne

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LAUNCHES = 50
REDIS_REPLY_DELAY = 0.02  # seconds each Redis reply is held: a Redis a few hops away


def test_fifty_launches_at_once_into_a_fresh_daphne_all_start(queue):
    users = [UserFactory() for _ in range(LAUNCHES)]  # one each: no launch limit or unfinished task refuses
    sessions = []
    for user in users:
        # A CSRF cookie of our own, so no page is loaded (and nothing built) before the burst.
        token = _get_new_csrf_string()
        sessions.append({"sessionid": session_cookie_for(user), "csrftoken": token})
    redis_url = urlsplit(os.environ["REDIS_URL"])
    redis_port = redis_url.port or 6379

    with SlowProxy(redis_port, REDIS_REPLY_DELAY) as proxy:
        slow_redis_url = urlunsplit(redis_url._replace(netloc=f"127.0.0.1:{proxy.port}"))
        # Only the queue's Redis is slow: the launches' round trips (rate limit, enqueue) go through it.
        env = child_env(REDIS_URL=slow_redis_url, CHANNEL_LAYER_REDIS_URL=os.environ["REDIS_URL"])
        with daphne(env, app="tests.slow_build_asgi:application") as (port, _):
            barrier = threading.Barrier(LAUNCHES)
            answers: list[tuple[int, int]] = []

            def launch(index: int) -> None:
                http = HttpSession(port)
                http.cookies.update(sessions[index])
                barrier.wait()
                # Half as the page's form does (a redirect to the task), half as a script (202 + JSON).
                status, _ = http.request("POST", "/exports/", json_client=index % 2 == 0)
                answers.append((index, status))

            threads = [threading.Thread(target=launch, args=(i,)) for i in range(LAUNCHES)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            log = Path(env["TEST_OUTPUT_DIR"], f"daphne-{port}.log").read_text(errors="replace")

    expected = {index: 202 if index % 2 == 0 else 302 for index in range(LAUNCHES)}
    assert dict(answers) == expected, f"{sorted(answers)}\ndaphne's log:\n{log[-6000:]}"
    assert "Traceback" not in log, log[-6000:]
    assert Task.objects.filter(status=Task.Status.QUEUED).count() == LAUNCHES
    assert queue.count == LAUNCHES, "every launch's job is on the queue"

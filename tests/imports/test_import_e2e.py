"""The round trip with the real programs: daphne takes the uploads and pushes progress, `rqworker`
runs the export and the import. Export alice, import that file as bob, export bob: the same posts,
value for value."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading

import pytest
from websockets.asyncio.client import connect

from live_tasks.models import Task
from posts.models import Post
from tests.factories import PostFactory, UserFactory, session_cookie_for
from tests.processes import HttpSession, child_env, daphne, wait_for_task, worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BODIES = ["Grüße 🌍 ünïcödé", "<script>alert('x')</script> & \"q\"", "<b>bold</b>", "line\r\nbreak\ttab", "שלום مرحبا"]
SITE_ENV = {"IMPORT_BATCH_SIZE": "100", "TASK_PROGRESS_INTERVAL": "0.01", "IMPORT_MAX_BYTES": str(2 * 2**20)}


def export_through_the_site(session: HttpSession) -> bytes:
    status, body = session.request("POST", "/exports/", json_client=True)
    assert status == 202, body
    task = wait_for_task(json.loads(body)["id"], lambda t: t.is_finished, 60)
    assert task.status == "succeeded", task.error
    status, content = session.request("GET", f"/tasks/{task.id}/download/")
    assert status == 200
    return content


class Feed:
    """A WebSocket on daphne, in a thread, collecting every task message it is pushed."""

    messages: list[dict]

    def __init__(self, port: int, cookie: str) -> None:
        self.url, self.cookie, self.messages = f"ws://127.0.0.1:{port}/ws/notifications/", cookie, []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        headers = {
            "Cookie": f"sessionid={self.cookie}",
            "Origin": self.url.replace("ws://", "http://").rsplit("/ws/", 1)[0],
        }
        async with connect(self.url, additional_headers=headers) as socket:
            while not self._stop.is_set():
                try:
                    message = json.loads(await asyncio.wait_for(socket.recv(), 0.1))
                except TimeoutError:
                    continue
                if message["type"] == "snapshot":
                    self._ready.set()
                elif message["type"] == "task":
                    self.messages.append(message["task"])

    def __enter__(self) -> Feed:
        self._thread.start()
        assert self._ready.wait(10), "no snapshot"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def test_export_import_export_gives_the_same_posts_and_the_import_is_live(smtp_server):
    alice, bob = UserFactory(), UserFactory()
    for i in range(1500):
        PostFactory(author=alice, body=f"{BODIES[i % len(BODIES)]} #{i} " + "😀" * (i % 3))
    env = child_env(EMAIL_URL=smtp_server.url, **SITE_ENV)
    with daphne(env) as (port, _), worker(env, name="worker-roundtrip"):
        exported = export_through_the_site(HttpSession(port, session_cookie_for(alice)))

        bob_session = HttpSession(port, session_cookie_for(bob))
        with Feed(port, bob_session.cookies["sessionid"]) as feed:
            status, body = bob_session.upload(
                "/imports/", "file", "alice.json.gz", gzip.compress(exported), json_client=True
            )
            assert status == 202, body
            launched = json.loads(body)
            assert launched["kind"] == "import_posts"
            task = wait_for_task(launched["id"], lambda t: t.is_finished, 60)
        assert (task.status, task.detail) == ("succeeded", "Imported 1,500 posts.")

        pushed = [m for m in feed.messages if m["id"] == launched["id"]]
        running = [m for m in pushed if m["status"] == "running" and m["detail"].startswith("Imported")]
        assert len(running) >= 3, "progress is pushed live while it imports"
        assert [m["progress"] for m in running] == sorted(m["progress"] for m in running)
        assert running[-1]["detail"].endswith("posts so far")
        assert pushed[-1]["status"] == "succeeded" and pushed[-1]["progress"] == 100

        again = json.loads(export_through_the_site(bob_session))
    original = json.loads(exported)
    as_set = lambda data: {(p["body"], p["created_at"]) for p in data["posts"]}  # noqa: E731
    assert as_set(again) == as_set(original) and len(as_set(original)) == 1500
    assert Post.objects.by_author(bob).count() == 1500


def test_uploads_without_a_content_length_are_capped_too(smtp_server):
    user = UserFactory()
    env = child_env(EMAIL_URL=smtp_server.url, **SITE_ENV)
    with daphne(env) as (port, _):
        session = HttpSession(port, session_cookie_for(user))
        too_big = b'{"posts": []}' + b" " * (3 * 2**20)
        status, body = session.upload("/imports/", "file", "big.json", too_big, json_client=True, chunked=True)
        assert status == 413, body
        assert json.loads(body) == {"error": "The file is too large: the limit is 2 MiB."}
        status, body = session.upload("/imports/", "file", "ok.json", b'{"posts": []}', json_client=True, chunked=True)
        assert status == 202, body
    assert Task.objects.get().kind == "import_posts"


def test_a_worker_killed_mid_import_leaves_no_post_behind():
    import signal

    import psutil

    user = UserFactory()
    PostFactory(author=user, body="mine before")
    posts = [{"body": f"Imported {i}", "created_at": "2024-01-01T00:00:00Z"} for i in range(200_000)]
    env = child_env(**{**SITE_ENV, "IMPORT_MAX_BYTES": str(50 * 2**20), "IMPORT_BATCH_SIZE": "50"})
    with daphne(env) as (port, _), worker(env, name="worker-killed-mid-import") as process:
        session = HttpSession(port, session_cookie_for(user))
        status, body = session.upload(
            "/imports/", "file", "big.json", json.dumps({"posts": posts}).encode(), json_client=True
        )
        assert status == 202, body
        task_id = json.loads(body)["id"]
        wait_for_task(task_id, lambda t: t.status == "running" and t.detail.startswith("Imported"), 60)
        assert Post.all_objects.filter(author=user).count() > 1, "some posts were staged"
        (horse,) = psutil.Process(process.pid).children()
        horse.send_signal(signal.SIGKILL)
        task = wait_for_task(task_id, lambda t: t.is_finished and not t.needs_cleanup, 60)
    assert task.status == "failed" and "worker lost" in task.error
    assert list(Post.all_objects.filter(author=user).values_list("body", flat=True)) == ["mine before"]

"""Live progress with the real programs: daphne serves HTTP and the socket, `rqworker` runs the export.

A client logs in over HTTP, opens /ws/notifications/ with the session cookie, launches an export
with a JSON POST, and follows it to the end through the pushes alone.
"""

from __future__ import annotations

import asyncio
import json
import time
from http.cookiejar import CookieJar
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, Request, build_opener

import pytest
from websockets.asyncio.client import connect

from posts.services import posts_seed
from tests.factories import PASSWORD, UserFactory
from tests.library.contract import TASK_KEYS
from tests.processes import child_env, daphne, worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Many small chunks and a short throttle, so that one export makes many progress updates.
POSTS = 30000
LIVE_ENV = {"EXPORT_CHUNK_SIZE": "200", "TASK_PROGRESS_INTERVAL": "0.005"}
EXPORT_DEADLINE = 60


class HttpClient:
    """A cookie-keeping HTTP client, as a script (not a browser) would talk to the site."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = CookieJar()
        self._opener = build_opener(HTTPCookieProcessor(self.jar))

    def cookie(self, name: str) -> str:
        values = [c.value for c in self.jar if c.name == name and c.value is not None]
        assert values, f"no {name} cookie was set"
        return values[-1]

    def request(self, method: str, path: str, *, form: dict | None = None, headers: dict | None = None):
        data = urlencode(form).encode() if form is not None else None
        request = Request(self.base + path, data=data, method=method, headers=headers or {})  # noqa: S310 -- http to daphne
        try:
            with self._opener.open(request, timeout=15) as response:
                return response.status, response.url, response.read()
        except HTTPError as error:
            return error.code, error.url, error.read()

    def login(self, username: str, password: str) -> None:
        status, _, _ = self.request("GET", "/accounts/login/")
        assert status == 200
        status, final_url, _ = self.request(
            "POST",
            "/accounts/login/",
            form={"username": username, "password": password, "csrfmiddlewaretoken": self.cookie("csrftoken")},
            headers={"Origin": self.base, "Referer": self.base + "/accounts/login/"},
        )
        assert status == 200 and final_url == self.base + "/exports/", (status, final_url)

    def launch_export(self) -> dict:
        status, _, body = self.request(
            "POST",
            "/exports/",
            form={},
            headers={
                "Accept": "application/json",
                "X-CSRFToken": self.cookie("csrftoken"),
                "Origin": self.base,
                "Referer": self.base + "/exports/",
            },
        )
        assert status == 202, (status, body[:500])
        return json.loads(body)


# Fixtures are synchronous: the database is only touched outside the tests' event loop.
@pytest.fixture
def site_port(smtp_server):
    """daphne and one `rqworker default`, on the test database and Redis, with small chunks."""
    env = child_env(EMAIL_URL=smtp_server.url, **LIVE_ENV)
    with daphne(env) as (port, _), worker(env, name=f"worker-live-{port}"):
        yield port


@pytest.fixture
def exporter(request):
    """A user with posts to export (POSTS, or the count given by indirect parametrization)."""
    count = getattr(request, "param", POSTS)
    user = UserFactory()
    assert posts_seed(author=user, count=count) == count
    return user


@pytest.fixture
def http(site_port, exporter) -> HttpClient:
    """The exporter, logged in over HTTP to daphne."""
    client = HttpClient(f"http://127.0.0.1:{site_port}")
    client.login(exporter.username, PASSWORD)
    return client


def socket_to(http: HttpClient):
    return connect(
        http.base.replace("http://", "ws://") + "/ws/notifications/",
        additional_headers={"Cookie": f"sessionid={http.cookie('sessionid')}", "Origin": http.base},
        open_timeout=10,
    )


async def receive_json(ws, timeout: float = 15) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def follow_until_finished(ws, task_id: str) -> list[dict]:
    """Every pushed state of `task_id`, up to and including its final one."""
    seen: list[dict] = []
    deadline = time.monotonic() + EXPORT_DEADLINE
    while not seen or seen[-1]["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"export did not finish in {EXPORT_DEADLINE}s: {seen[-3:]}"
        message = await receive_json(ws)
        assert message["type"] == "task", message
        assert set(message["task"]) == TASK_KEYS
        assert message["task"]["id"] == task_id, "only my one task exists"
        seen.append(message["task"])
    return seen


async def test_export_progress_is_pushed_live_until_the_download_is_ready(http, exporter, smtp_server):
    async with socket_to(http) as ws:
        assert await receive_json(ws) == {"type": "snapshot", "tasks": []}

        launched = await asyncio.to_thread(http.launch_export)
        assert launched["status"] == "queued" and launched["progress"] == 0

        updates = await follow_until_finished(ws, launched["id"])

    # The site first announces the new task to the owner's open pages exactly as launched (queued,
    # seq 0); everything after that comes from the worker, one change per message, in order.
    assert updates[0] == launched
    from_worker = updates[1:]
    seqs = [u["seq"] for u in from_worker]
    progress = [u["progress"] for u in from_worker]
    assert seqs == sorted(set(seqs)), f"seq must strictly increase: {seqs}"
    assert seqs[0] > launched["seq"]
    assert progress == sorted(progress), f"progress must never go back: {progress}"
    intermediate = {p for p in progress if 0 < p < 100}
    assert len(intermediate) >= 5, f"too few live progress steps: {progress}"
    assert {u["status"] for u in from_worker[:-1]} == {"running"}
    # A page shows 100 % only with the success: not while the file is stored or the email is sent.
    assert max(u["progress"] for u in updates[:-1]) < 100, progress
    assert all(u["download_url"] is None for u in updates[:-1])

    final = updates[-1]
    assert final["status"] == "succeeded", final
    assert final["progress"] == 100
    assert final["detail"] == f"{POSTS:,} posts exported"
    assert final["download_url"] == f"/tasks/{launched['id']}/download/"
    assert final["started_at"] and final["finished_at"] and final["error"] == ""

    # The pushed state is the API's state, and the pushed link serves the file.
    status, _, body = http.request("GET", f"/api/tasks/{launched['id']}/", headers={"Accept": "application/json"})
    assert status == 200 and json.loads(body) == final
    status, _, body = http.request("GET", final["download_url"])
    assert status == 200
    exported = json.loads(body)
    assert exported["count"] == POSTS and len(exported["posts"]) == POSTS
    assert [m["To"] for m in smtp_server.messages] == [exporter.email]


@pytest.mark.parametrize("exporter", [1500], indirect=True, ids=["1500-posts"])
async def test_a_socket_reconnecting_after_the_export_finished_gets_its_final_state(http):
    async with socket_to(http) as ws:
        assert (await receive_json(ws))["tasks"] == []
        launched = await asyncio.to_thread(http.launch_export)
        final = (await follow_until_finished(ws, launched["id"]))[-1]
    assert final["status"] == "succeeded"

    # The page was closed while nothing changed; a new page opens a new socket.
    async with socket_to(http) as ws:
        snapshot = await receive_json(ws)
        assert snapshot == {"type": "snapshot", "tasks": [final]}
        # Nothing is replayed after the snapshot: it alone carries the state.
        with pytest.raises(TimeoutError):
            await receive_json(ws, timeout=0.5)
        await ws.send(json.dumps({"type": "ping"}))
        assert await receive_json(ws) == {"type": "pong"}

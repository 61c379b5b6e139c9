"""The live task feed at /ws/tasks/, through the full ASGI stack on the real Redis layer.

Each socket goes through `project.asgi.application` exactly as daphne serves it: the Origin check,
the session cookie, the consumer, and Channels' Redis pub/sub layer. Task changes are made by the
real state API (exports.task_state), which publishes from its own thread like a worker does.
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from live_tasks.models import Task
from live_tasks.reporter import ProgressReporter, TaskNoLongerRunning
from live_tasks.state import task_mark_running, task_mark_succeeded

from .asgi import application
from .contract import TASK_KEYS
from .helpers import StaffFactory, TaskFactory, UserFactory, session_cookie_for, signed_in_client

pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/ws/tasks/"
ORIGIN = b"http://127.0.0.1:8000"
# Generous: the first message of a test may wait for a new Redis connection and a DB thread.
TIMEOUT = 5
# How long "nothing arrives" is watched for.
QUIET = 0.5


def session_cookie(user) -> bytes:
    return f"sessionid={session_cookie_for(user)}".encode()


def api_task(user, task_id) -> dict:
    """The task as /tasks/api/<id>/ shows it to its owner: the shape every socket message must have."""
    response = signed_in_client(user).get(f"/tasks/api/{task_id}/")
    assert response.status_code == 200
    return response.json()


@asynccontextmanager
async def socket(cookie: bytes | None = None, *, query: str = "", origin: bytes | None = ORIGIN):
    """An open, accepted socket; closed again on exit."""
    communicator = communicator_for(cookie, query=query, origin=origin)
    connected, code = await communicator.connect(timeout=TIMEOUT)
    assert connected, f"handshake refused (close code {code})"
    try:
        yield communicator
    finally:
        await communicator.disconnect()


def communicator_for(cookie: bytes | None = None, *, query: str = "", origin: bytes | None = ORIGIN):
    headers = [(b"host", b"127.0.0.1:8000")]
    if origin is not None:
        headers.append((b"origin", origin))
    if cookie is not None:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, PATH + (f"?{query}" if query else ""), headers=headers)


async def receive(communicator) -> dict:
    return await communicator.receive_json_from(timeout=TIMEOUT)


async def receive_snapshot(communicator) -> list[dict]:
    message = await receive(communicator)
    assert message["type"] == "snapshot", message
    return message["tasks"]


async def receive_task(communicator) -> dict:
    message = await receive(communicator)
    assert message["type"] == "task", message
    assert set(message["task"]) == TASK_KEYS
    return message["task"]


async def assert_still_answers_ping(communicator) -> None:
    await communicator.send_json_to({"type": "ping"})
    assert await receive(communicator) == {"type": "pong"}


run_db = database_sync_to_async


# --- Who may connect ---------------------------------------------------------------------------


async def test_anonymous_socket_is_closed_with_4401_and_sent_nothing():
    communicator = communicator_for(cookie=None)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected, "accepted first, so that the page's script can read the close code"

    closing = await communicator.receive_output(timeout=TIMEOUT)
    assert closing == {"type": "websocket.close", "code": 4401}
    assert await communicator.receive_nothing(timeout=QUIET)
    await communicator.wait()


async def test_a_stale_session_cookie_counts_as_anonymous():
    communicator = communicator_for(cookie=b"sessionid=not-a-real-session-key")
    assert (await communicator.connect(timeout=TIMEOUT))[0]
    assert await communicator.receive_output(timeout=TIMEOUT) == {"type": "websocket.close", "code": 4401}
    await communicator.wait()


@pytest.mark.parametrize(
    "origin",
    [
        b"http://evil.example",
        b"http://127.0.0.1.evil.example:8000",
        b"null",
        None,
        b"http://127.0.0.1:9999",
        b"http://127.0.0.1",
        b"https://127.0.0.1:8000",
        b"http://localhost:8000",
    ],
    ids=["foreign", "lookalike", "null", "missing", "other-port", "default-port", "other-scheme", "other-host"],
)
async def test_handshake_from_a_foreign_origin_is_refused(user, origin):
    """Only the origin the handshake came in on (here http://127.0.0.1:8000): another application
    on the same host, on another port or scheme, must not read a signed-in user's feed."""
    cookie = await run_db(session_cookie)(user)
    communicator = communicator_for(cookie, origin=origin)

    connected, _ = await communicator.connect(timeout=TIMEOUT)

    assert not connected
    await communicator.wait()


async def test_handshake_from_the_sites_own_origin_is_accepted(user):
    cookie = await run_db(session_cookie)(user)
    async with socket(cookie, origin=b"http://127.0.0.1:8000") as ws:
        assert await receive_snapshot(ws) == []


async def test_an_origin_listed_in_csrf_trusted_origins_is_accepted(user, settings):
    """Behind a reverse proxy the browser's origin (https://...) is not the one daphne sees."""
    settings.CSRF_TRUSTED_ORIGINS = ["https://exports.example.com", "https://*.example.org"]
    cookie = await run_db(session_cookie)(user)
    for origin in (b"https://exports.example.com", b"https://live.example.org"):
        async with socket(cookie, origin=origin) as ws:
            assert await receive_snapshot(ws) == []
    for origin in (b"http://exports.example.com", b"https://exports.example.com:8443", b"https://example.net"):
        communicator = communicator_for(cookie, origin=origin)
        assert not (await communicator.connect(timeout=TIMEOUT))[0], origin
        await communicator.wait()


# --- Snapshot -------------------------------------------------------------------------------


async def test_snapshot_on_connect_has_the_users_current_and_recent_tasks_in_api_shape(user, other_user):
    def arrange():
        now = timezone.now()
        old = TaskFactory(user=user, status=Task.Status.SUCCEEDED, progress=100, finished_at=now - timedelta(hours=2))
        recent = TaskFactory(user=user, status=Task.Status.FAILED, error="boom", finished_at=now - timedelta(minutes=5))
        unfinished = TaskFactory(user=user, status=Task.Status.RUNNING, progress=42, seq=7, detail="42 of 100 posts")
        TaskFactory(user=other_user, status=Task.Status.RUNNING)  # someone else's
        return old, recent, unfinished, session_cookie(user)

    old, recent, unfinished, cookie = await run_db(arrange)()
    expected_unfinished = await run_db(api_task)(user, unfinished.id)
    expected_recent = await run_db(api_task)(user, recent.id)

    async with socket(cookie) as ws:
        tasks = await receive_snapshot(ws)

    assert all(set(task) == TASK_KEYS for task in tasks)
    by_id = {task["id"]: task for task in tasks}
    assert set(by_id) == {str(unfinished.id), str(recent.id)}, "only mine, and not the one finished 2 h ago"
    assert by_id[str(unfinished.id)] == expected_unfinished
    assert by_id[str(unfinished.id)]["status"] == "running" and by_id[str(unfinished.id)]["progress"] == 42
    assert by_id[str(recent.id)] == expected_recent


async def test_client_can_ask_for_a_fresh_snapshot(user):
    cookie = await run_db(session_cookie)(user)
    async with socket(cookie) as ws:
        assert await receive_snapshot(ws) == []
        task = await run_db(TaskFactory)(user=user)

        await ws.send_json_to({"type": "snapshot"})

        (sent,) = await receive_snapshot(ws)
        assert sent["id"] == str(task.id) and sent["status"] == "queued"


# --- Live updates ---------------------------------------------------------------------------


async def test_changes_made_through_the_state_api_are_pushed_in_order(user):
    task, cookie = await run_db(lambda: (TaskFactory(user=user), session_cookie(user)))()

    async with socket(cookie) as ws:
        (initial,) = await receive_snapshot(ws)
        assert initial["status"] == "queued" and initial["progress"] == 0

        await run_db(task_mark_running)(task.id)
        running = await receive_task(ws)
        assert running["id"] == str(task.id)
        assert running["status"] == "running" and running["started_at"] is not None
        assert running["seq"] > initial["seq"]

        await run_db(ProgressReporter(task.id, interval=0).__call__)(37, 100, detail="37 of 100 posts")
        progressed = await receive_task(ws)
        assert (progressed["status"], progressed["progress"]) == ("running", 37)
        assert progressed["detail"] == "37 of 100 posts"
        assert progressed["seq"] > running["seq"]

        await run_db(task_mark_succeeded)(task.id, detail="100 posts exported", file_name="exports/x.json")
        finished = await receive_task(ws)
        assert (finished["status"], finished["progress"]) == ("succeeded", 100)
        assert finished["download_url"] == f"/tasks/{task.id}/download/"
        assert finished["finished_at"] is not None
        assert finished["seq"] > progressed["seq"]

        assert finished == await run_db(api_task)(user, task.id), "the push is the API's JSON"
        assert await ws.receive_nothing(timeout=QUIET), "one message per change"


async def test_pushes_reach_the_socket_without_a_thread_hop_each(user, monkeypatch):
    """Channels' dispatch hops to a thread before every message to close stale database
    connections; a push never reads the database, and on a busy daphne those hops (one per push
    per socket) took 9% of its time (docs/performance.md, run R)."""
    hops: list[str] = []

    async def counted_hop() -> None:
        hops.append("close_old_connections")

    monkeypatch.setattr("channels.consumer.aclose_old_connections", counted_hop)
    task, cookie = await run_db(lambda: (TaskFactory(user=user), session_cookie(user)))()
    async with socket(cookie) as ws:
        await receive_snapshot(ws)
        await run_db(task_mark_running)(task.id)
        for percent in (10, 20, 30):
            await run_db(ProgressReporter(task.id, interval=0).__call__)(percent, 100, detail=f"{percent} of 100")
        pushed = [await receive_task(ws) for _ in range(4)]
    assert [message["progress"] for message in pushed] == [0, 10, 20, 30]
    assert hops == []


async def test_a_change_that_the_state_api_refuses_is_not_pushed(user):
    """A late write on a finished task changes nothing, so nothing is announced."""
    task, cookie = await run_db(
        lambda: (TaskFactory(user=user, status=Task.Status.FAILED, finished_at=timezone.now()), session_cookie(user))
    )()
    async with socket(cookie) as ws:
        (shown,) = await receive_snapshot(ws)
        assert shown["status"] == "failed"

        assert await run_db(task_mark_running)(task.id) is None
        with pytest.raises(TaskNoLongerRunning):  # a job reporting on it is told to stop
            await run_db(ProgressReporter(task.id, interval=0).__call__)(50, 100, detail="50 of 100 posts")

        assert await ws.receive_nothing(timeout=QUIET)


async def test_a_user_never_receives_another_users_events(user, other_user):
    def arrange():
        return TaskFactory(user=other_user), session_cookie(user), session_cookie(other_user)

    others_task, my_cookie, their_cookie = await run_db(arrange)()

    async with socket(my_cookie) as mine, socket(their_cookie) as theirs:
        assert await receive_snapshot(mine) == [], "their task is not in my snapshot"
        assert [t["id"] for t in await receive_snapshot(theirs)] == [str(others_task.id)]

        await run_db(task_mark_running)(others_task.id)
        await run_db(ProgressReporter(others_task.id, interval=0).__call__)(10, 100, detail="10 of 100 posts")

        # The events did go out (their own socket got both) ...
        assert (await receive_task(theirs))["status"] == "running"
        assert (await receive_task(theirs))["progress"] == 10
        # ... but not to me.
        assert await mine.receive_nothing(timeout=QUIET)
        await mine.send_json_to({"type": "snapshot"})
        assert await receive_snapshot(mine) == []


# --- Staff feed -----------------------------------------------------------------------------


async def test_staff_with_scope_all_follows_every_users_tasks_but_a_regular_user_cannot(user):
    def arrange():
        staff = StaffFactory()
        nosy = UserFactory()
        task = TaskFactory(user=user)
        return task, session_cookie(staff), session_cookie(nosy), session_cookie(user)

    task, staff_cookie, nosy_cookie, owner_cookie = await run_db(arrange)()

    async with (
        socket(staff_cookie, query="scope=all") as staff,
        socket(nosy_cookie, query="scope=all") as nosy,
        socket(owner_cookie) as owner,
    ):
        assert [t["id"] for t in await receive_snapshot(staff)] == [str(task.id)]
        assert await receive_snapshot(nosy) == []
        await receive_snapshot(owner)

        await run_db(task_mark_running)(task.id)

        pushed = await receive_task(staff)
        assert pushed["id"] == str(task.id) and pushed["status"] == "running"
        assert (await receive_task(owner)) == pushed
        assert await nosy.receive_nothing(timeout=QUIET)


async def test_staff_without_the_view_permission_get_only_their_own_tasks_with_scope_all(user):
    def arrange():
        staff = StaffFactory(permissions=["cancel_task", "retry_task"])  # acting is not watching
        return TaskFactory(user=user), TaskFactory(user=staff), session_cookie(staff)

    task, own, staff_cookie = await run_db(arrange)()
    async with socket(staff_cookie, query="scope=all") as staff:
        assert [t["id"] for t in await receive_snapshot(staff)] == [str(own.id)]
        await run_db(task_mark_running)(task.id)
        assert await staff.receive_nothing(timeout=QUIET)


async def test_staff_without_scope_all_only_follows_their_own_tasks(user):
    def arrange():
        staff = StaffFactory()
        return TaskFactory(user=user), session_cookie(staff)

    task, staff_cookie = await run_db(arrange)()
    async with socket(staff_cookie) as staff:
        assert await receive_snapshot(staff) == []
        await run_db(task_mark_running)(task.id)
        assert await staff.receive_nothing(timeout=QUIET)


# --- Misbehaving clients --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ({"text_data": "{not json"}, "Invalid JSON."),
        ({"text_data": ""}, "Invalid JSON."),
        ({"text_data": '{"type": "delete_everything"}'}, "Unknown message type."),
        ({"text_data": '["ping"]'}, "Unknown message type."),
        ({"text_data": '"ping"'}, "Unknown message type."),
        ({"text_data": "null"}, "Unknown message type."),
        ({"text_data": '{"type": ["ping"]}'}, "Unknown message type."),
        ({"bytes_data": b"\x00\xff binary"}, "Binary frames are not supported."),
        ({"text_data": json.dumps({"type": "ping", "pad": "x" * 5000})}, "Message too large."),
        ({"text_data": "\u00e9" * 4097}, "Message too large."),
    ],
    ids=[
        "invalid-json",
        "empty",
        "unknown-type",
        "array",
        "string",
        "null",
        "unhashable-type",
        "binary",
        "huge-ping",
        "huge-unicode",
    ],
)
async def test_malformed_input_gets_an_error_reply_and_the_socket_stays_open(user, frame, error):
    cookie = await run_db(session_cookie)(user)
    async with socket(cookie) as ws:
        await receive_snapshot(ws)

        if "bytes_data" in frame:
            await ws.send_to(bytes_data=frame["bytes_data"])
        else:
            # send_to() refuses an empty string; send the raw ASGI event instead.
            await ws.send_input({"type": "websocket.receive", "text": frame["text_data"]})

        assert await receive(ws) == {"type": "error", "error": error}
        await assert_still_answers_ping(ws)


async def test_a_flood_gets_at_most_ten_error_replies_and_the_socket_keeps_working(user):
    task, cookie = await run_db(lambda: (TaskFactory(user=user), session_cookie(user)))()
    async with socket(cookie) as ws:
        await receive_snapshot(ws)

        for i in range(200):
            await ws.send_to(text_data=f'{{"type": "spam", "n": {i}}}')
        await ws.send_json_to({"type": "ping"})

        replies = []
        while (message := await receive(ws)) != {"type": "pong"}:
            replies.append(message)
        assert replies == [{"type": "error", "error": "Unknown message type."}] * 10

        # Still a working feed: pings, snapshots and live updates get through.
        await assert_still_answers_ping(ws)
        await ws.send_json_to({"type": "snapshot"})
        assert [t["id"] for t in await receive_snapshot(ws)] == [str(task.id)]
        await run_db(task_mark_running)(task.id)
        assert (await receive_task(ws))["status"] == "running"
        assert await ws.receive_nothing(timeout=QUIET), "no backlog of errors after the flood"


async def test_a_flood_of_pings_and_snapshot_requests_gets_bounded_answers(user):
    task, cookie = await run_db(lambda: (TaskFactory(user=user), session_cookie(user)))()
    async with socket(cookie) as ws:
        await receive_snapshot(ws)
        for _ in range(100):
            await ws.send_json_to({"type": "ping"})
            await ws.send_json_to({"type": "snapshot"})

        replies = []
        while not await ws.receive_nothing(timeout=QUIET):
            replies.append(await receive(ws))
        kinds = [reply["type"] for reply in replies]
        # A client that floods gets a bounded number of answers (and of snapshot queries)...
        assert kinds.count("pong") == 10 and kinds.count("snapshot") == 10 and len(kinds) == 20
        # ...while the updates it subscribed to keep flowing.
        await run_db(task_mark_running)(task.id)
        assert (await receive_task(ws))["status"] == "running"


async def test_a_session_check_that_raises_closes_the_socket_with_1011_and_it_leaves_its_groups(user, monkeypatch):
    """The database away at a re-check: the socket is not left open unchecked, and the consumer ends
    cleanly (its groups left, so nothing more is sent to it), instead of dying inside a handler."""
    from django.db import OperationalError

    import live_tasks.push.consumers as consumers

    cookie = await run_db(session_cookie)(user)
    communicator = communicator_for(cookie)
    assert (await communicator.connect(timeout=TIMEOUT))[0]
    assert await receive_snapshot(communicator) == []

    def database_away(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(consumers, "session_check", database_away)
    await communicator.send_json_to({"type": "snapshot"})
    assert await communicator.receive_output(timeout=TIMEOUT) == {"type": "websocket.close", "code": 1011}
    monkeypatch.undo()
    task = await run_db(TaskFactory)(user=user)
    await run_db(task_mark_running)(task.id)
    assert await communicator.receive_nothing(timeout=QUIET)
    await communicator.wait()


async def test_a_new_socket_whose_session_cannot_be_checked_is_closed_with_1011(user, monkeypatch):
    import live_tasks.push.consumers as consumers

    def database_away(**kwargs):
        from django.db import OperationalError

        raise OperationalError("connection refused")

    cookie = await run_db(session_cookie)(user)
    monkeypatch.setattr(consumers, "session_check", database_away)
    communicator = communicator_for(cookie)
    assert (await communicator.connect(timeout=TIMEOUT))[0]
    assert await communicator.receive_output(timeout=TIMEOUT) == {"type": "websocket.close", "code": 1011}
    await communicator.wait()

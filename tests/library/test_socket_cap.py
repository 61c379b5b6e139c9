"""At most LIVE_SOCKETS_PER_USER live sockets per user, counted over every daphne process.

Past the cap the oldest socket is closed with 4429 (live.js does not reconnect on it). The count
lives in Redis with expiring entries, so a daphne that is killed does not leave its sockets
counted for ever.
"""

from __future__ import annotations

import asyncio
import json
import signal

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from live_tasks.push.sockets import STALE_AFTER_RECHECKS, _key
from live_tasks.queue.rq import default_queue

from .helpers import UserFactory, child_env, daphne, session_cookie_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CAP = 3
RECHECK_SECONDS = 1.0


def open_socket(port: int, cookie: str):
    headers = {"Cookie": f"sessionid={cookie}", "Origin": f"http://127.0.0.1:{port}"}
    return connect(f"ws://127.0.0.1:{port}/ws/tasks/", additional_headers=headers)


async def snapshot(ws) -> None:
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "snapshot"


async def close_code(ws, timeout: float) -> int | None:
    """The close code if the socket is closed within `timeout`, else None (still open)."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except TimeoutError:
        return None
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else -1


def test_past_the_cap_the_oldest_socket_is_closed_across_two_daphnes():
    user, neighbour = UserFactory(), UserFactory()
    cookies = [session_cookie_for(user) for _ in range(2)]  # two browsers, one user
    neighbours = session_cookie_for(neighbour)
    env = child_env(LIVE_TASKS_JSON=json.dumps({"SOCKETS_PER_USER": CAP}))
    with daphne(env) as (first, _), daphne(env) as (second, _):

        async def scenario():
            oldest = await open_socket(first, cookies[0]).__aenter__()
            await snapshot(oldest)
            others = []
            for port, cookie in [(second, cookies[1]), (first, cookies[1])]:
                ws = await open_socket(port, cookie).__aenter__()
                await snapshot(ws)
                others.append(ws)
            their = await open_socket(second, neighbours).__aenter__()  # another user's count
            await snapshot(their)
            assert await close_code(oldest, 0.5) is None, "at the cap, nobody is closed"

            newest = await open_socket(second, cookies[0]).__aenter__()  # one over, on the other daphne
            await snapshot(newest)
            assert await close_code(oldest, 10) == 4429
            for ws in [*others, newest, their]:
                assert await close_code(ws, 0.5) is None
                await ws.send('{"type": "ping"}')
                assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong"}
            for ws in [*others, newest, their]:
                await ws.close()

        asyncio.run(scenario())


def test_the_sockets_of_a_killed_daphne_stop_counting_and_a_live_socket_keeps_its_place():
    user = UserFactory()
    cookie = session_cookie_for(user)
    redis = default_queue().connection  # the test's channel layer uses the same Redis
    env = child_env(LIVE_TASKS_JSON=json.dumps({"SOCKETS_PER_USER": CAP, "SESSION_RECHECK_SECONDS": RECHECK_SECONDS}))
    stale_after = STALE_AFTER_RECHECKS * RECHECK_SECONDS * 1.25 + 5
    with daphne(env) as (survivor, _):

        async def scenario(doomed: int, doomed_process) -> None:
            live = await open_socket(survivor, cookie).__aenter__()  # the oldest, and it stays
            await snapshot(live)
            for _ in range(CAP - 1):
                await snapshot(await open_socket(doomed, cookie).__aenter__())
            assert redis.zcard(_key(user.pk)) == CAP
            doomed_process.send_signal(signal.SIGKILL)  # its sockets never say goodbye
            await asyncio.to_thread(doomed_process.wait, 10)

            await asyncio.sleep(stale_after + 1)  # longer than the key's own expiry, too
            assert redis.ttl(_key(user.pk)) > 0, "a live socket keeps its user's set"
            for _ in range(CAP - 1):  # two new pages: within the cap once the dead ones are gone
                await snapshot(await open_socket(survivor, cookie).__aenter__())
            assert redis.zcard(_key(user.pk)) == CAP
            assert await close_code(live, 1) is None, "the live socket was not evicted by dead ones"
            await live.send('{"type": "ping"}')
            assert json.loads(await asyncio.wait_for(live.recv(), 10)) == {"type": "pong"}

        with daphne(env) as (doomed, doomed_process):
            asyncio.run(scenario(doomed, doomed_process))

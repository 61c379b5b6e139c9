"""Hostile WebSocket clients against a real daphne: oversized frames and floods from non-readers."""

from __future__ import annotations

import asyncio
import json

import psutil
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.factories import UserFactory, session_cookie_for
from tests.processes import child_env, daphne

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def open_socket(port: int, cookie: str):
    headers = {"Cookie": f"sessionid={cookie}", "Origin": f"http://127.0.0.1:{port}"}
    return connect(f"ws://127.0.0.1:{port}/ws/notifications/", additional_headers=headers, max_size=None)


async def still_serves(port: int, cookie: str) -> None:
    async with open_socket(port, cookie) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "snapshot"
        await ws.send('{"type": "ping"}')
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong"}


def test_an_oversized_message_closes_only_that_socket():
    cookie = session_cookie_for(UserFactory())
    with daphne(child_env()) as (port, _):

        async def scenario():
            async with open_socket(port, cookie) as ws:
                await ws.recv()  # snapshot
                await ws.send("x" * (2 * 1024 * 1024))  # over daphne's 1 MiB message limit
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 10)
                # daphne fails the connection with 1009 ("message too big"); a client still busy
                # sending may only see the connection drop.
                assert closed.value.rcvd is None or closed.value.rcvd.code == 1009
            await still_serves(port, cookie)

        asyncio.run(scenario())


def test_a_client_that_floods_and_never_reads_cannot_grow_the_server():
    cookie = session_cookie_for(UserFactory())
    with daphne(child_env()) as (port, proc):
        server = psutil.Process(proc.pid)

        async def scenario():
            await still_serves(port, cookie)  # warm up: imports, first connection
            before = server.memory_info().rss
            async with open_socket(port, cookie) as ws:
                for i in range(20_000):  # every kind of message, never reading an answer
                    await ws.send(['{"type": "ping"}', '{"type": "snapshot"}', "not json"][i % 3])
                await asyncio.sleep(1)
                grown = server.memory_info().rss - before
            await still_serves(port, cookie)
            return grown

        grown = asyncio.run(scenario())
    assert grown < 30 * 1024 * 1024, f"daphne grew by {grown / 2**20:.1f} MiB"

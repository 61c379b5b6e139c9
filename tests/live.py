"""A live page in a test: a real WebSocket client on the full ASGI stack, collecting what it is pushed.

It runs in its own thread and event loop, so the test's main thread can meanwhile run jobs
synchronously. Needs committed data (django_db(transaction=True)): the consumer reads the
database from another thread.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

from channels.testing import WebsocketCommunicator

from project.asgi import application
from tests.factories import session_cookie_for

ORIGIN = b"http://127.0.0.1:8000"


class LiveFeed:
    def __init__(self, user, path: str = "/ws/notifications/") -> None:
        self.cookie = session_cookie_for(user)
        self.path = path
        self.messages: list[dict] = []
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.error: BaseException | None = None

    async def _run(self) -> None:
        communicator = WebsocketCommunicator(
            application,
            self.path,
            headers=[
                (b"host", b"127.0.0.1:8000"),
                (b"cookie", f"sessionid={self.cookie}".encode()),
                (b"origin", ORIGIN),
            ],
        )
        try:
            connected, _ = await communicator.connect()
            assert connected
            self._connected.set()
            while not self._stop.is_set():
                # Not receive_from(timeout=...): on a timeout it cancels the application.
                try:
                    event = await asyncio.wait_for(communicator.output_queue.get(), 0.1)
                except TimeoutError:
                    continue
                assert event["type"] == "websocket.send", event
                self.messages.append(json.loads(event["text"]))
        except BaseException as exc:  # surfaced to the test by __exit__
            self.error = exc
            self._connected.set()
        finally:
            await communicator.disconnect()

    def task_messages(self, task_id) -> list[dict]:
        return [m["task"] for m in self.messages if m["type"] == "task" and m["task"]["id"] == str(task_id)]

    def wait_for(self, predicate, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(predicate(m) for m in list(self.messages)):
                return
            time.sleep(0.02)
        raise AssertionError(f"no matching message within {timeout}s; got {self.messages}")

    def __enter__(self) -> LiveFeed:
        self._thread.start()
        assert self._connected.wait(10), "the WebSocket did not connect"
        if self.error:
            raise self.error
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(0.2)  # let the last published messages arrive
        self._stop.set()
        self._thread.join(10)
        if self.error:
            raise self.error

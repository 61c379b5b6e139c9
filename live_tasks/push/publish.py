"""The one place that sends to the channel layer: task changes, and orders to live sockets.

Workers are synchronous. `async_to_sync(layer.group_send)` per call would build a new event loop
and a new Redis connection each time (~3 ms). Instead each process keeps one event loop in a
daemon thread for its whole life, so the layer keeps one connection, and a progress update costs
a hand-off to that thread. RQ forks a work horse per job, so the loop is made per process id.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from channels.layers import get_channel_layer

from .. import stats
from .groups import STAFF_GROUP, session_group_name, user_group_name, user_sockets_group_name

logger = logging.getLogger(__name__)

# How long a waited-for message (a final state, a new task) may wait for Redis to accept it.
WAIT_SEND_TIMEOUT = 3.0
# An order to sockets is sent from a request (a logout, a save in the admin): wait less for it.
CONTROL_SEND_TIMEOUT = 1.0


class _LayerPublisher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None
        self._failing = False

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="channel-layer-publisher", daemon=True).start()
                self._loop, self._pid = loop, os.getpid()
            assert self._loop is not None
            return self._loop

    async def _send(self, groups: tuple[str, ...], message: dict[str, Any]) -> None:
        # Counted here, before the caller waiting on it wakes (a work horse writes its metrics
        # right after its last, waited-for push, then exits); in memory only (live_tasks/stats.py).
        try:
            await self._send_to_groups(groups, message)
        except BaseException:
            stats.count("live_tasks_pushes", type=message["type"], outcome="dropped")
            raise
        stats.count("live_tasks_pushes", type=message["type"], outcome="sent")

    async def _send_to_groups(self, groups: tuple[str, ...], message: dict[str, Any]) -> None:
        layer = get_channel_layer()
        assert layer is not None  # settings.CHANNEL_LAYERS configures the default layer
        for group in groups:
            try:
                await layer.group_send(group, message)
            except Exception:
                # After a Redis restart the layer's pooled connection is dead and the first send
                # fails on it. Drop this loop's connections (this thread only publishes, so it
                # holds no subscription) and try once more on a fresh one before giving up.
                await layer.flush()
                await layer.group_send(group, message)

    def send(
        self, groups: tuple[str, ...], message: dict[str, Any], *, wait: bool, timeout: float = WAIT_SEND_TIMEOUT
    ) -> bool:
        """Hand the message to the loop; with `wait`, block until Redis took it. Never raises."""
        future = asyncio.run_coroutine_threadsafe(self._send(groups, message), self._event_loop())
        future.add_done_callback(self._log_outcome)
        if not wait:
            return True
        try:
            future.result(timeout=timeout)
        except FutureTimeout:
            future.cancel()
            logger.warning("Channel layer did not accept a message within %ss", timeout)
            return False
        except Exception:
            return False  # already logged by _log_outcome
        return True

    def _log_outcome(self, future: Future[None]) -> None:
        # Log a failing layer once, not once per progress update, and say when it is back.
        error = None if future.cancelled() else future.exception()
        if error is not None and not self._failing:
            self._failing = True
            logger.warning("Live updates are not being delivered (channel layer error: %r)", error)
        elif error is None and self._failing:
            self._failing = False
            logger.info("Live updates are being delivered again")


_publisher = _LayerPublisher()


def _groups_of(user_id: int | None) -> tuple[str, ...]:
    # A task without an owner (user_id None) is staff's alone.
    return (STAFF_GROUP,) if user_id is None else (user_group_name(user_id), STAFF_GROUP)


def publish_task_update(*, user_id: int | None, task: dict[str, Any], wait: bool) -> bool:
    """Tell the owner's open pages and staff that a task changed; `wait` blocks until Redis has it.

    Waiting is for a task's final state, which must not be lost to the work horse exiting right
    after. Other updates are handed off without waiting and published in the order given.

    Delivery is at-most-once: the task row stays the truth, and a page that missed this
    catches up from the snapshot it gets on (re)connect.
    """
    message = {"type": "task.update", "task": task}
    return _publisher.send(_groups_of(user_id), message, wait=wait)


def publisher_warm_up() -> None:
    """Load the channel layer's code (serializer, msgpack...) in this process, without connecting.

    A worker calls this before it forks its work horses, so that no job pays for these imports.
    """
    get_channel_layer()


def publish_session_ended(*, session_key: str) -> bool:
    """Close every socket opened on this session (a logout), whatever the session row says now."""
    message = {"type": "socket.revoke", "recheck": False}
    stats.count("live_tasks_socket_revocations", reason="logout")
    return _publisher.send((session_group_name(session_key),), message, wait=True, timeout=CONTROL_SEND_TIMEOUT)


def publish_user_sockets_recheck(*, user_id: int) -> bool:
    """Make every socket of the user re-check its session now; those no longer valid close."""
    message = {"type": "socket.revoke", "recheck": True}
    stats.count("live_tasks_socket_revocations", reason="recheck")
    return _publisher.send((user_sockets_group_name(user_id),), message, wait=True, timeout=CONTROL_SEND_TIMEOUT)


def publish_task_deleted(*, user_id: int | None, task_id: str) -> bool:
    """Tell the owner's open pages and staff that a task was deleted, so that they drop it.

    Waits until Redis has it: a deletion happens once, and no later state repeats it.
    """
    message = {"type": "task.deleted", "id": task_id}
    return _publisher.send(_groups_of(user_id), message, wait=True)

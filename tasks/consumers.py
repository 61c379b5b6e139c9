"""The live task feed at /ws/notifications/ (protocol: docs/protocol.md). Kept dumb on purpose:
authenticate, join the right group, send a snapshot, forward task changes."""

from __future__ import annotations

import time
from urllib.parse import parse_qs

import orjson
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from notifications.groups import STAFF_GROUP, user_group_name

from .selectors import task_snapshot_for

CLOSE_UNAUTHENTICATED = 4401
# Client messages are tiny ({"type": "ping"}); anything longer is refused without parsing it.
# (daphne itself closes the socket on a message over 1 MiB, before it reaches this consumer.)
MAX_CLIENT_MESSAGE_CHARS = 4096
# Answers to client messages are rate-limited per kind (pong, snapshot, error), so a client that
# floods and never reads cannot make the server buffer an unbounded backlog, nor turn snapshot
# requests into a flood of database queries. Past the budget, messages are dropped unanswered.
REPLIES_PER_WINDOW = 10
REPLY_WINDOW_SECONDS = 10.0


class _ReplyBudget:
    """At most REPLIES_PER_WINDOW replies in each REPLY_WINDOW_SECONDS (a fixed window)."""

    def __init__(self) -> None:
        self.window_start, self.used = time.monotonic(), 0

    def allow(self) -> bool:
        now = time.monotonic()
        if now - self.window_start > REPLY_WINDOW_SECONDS:
            self.window_start, self.used = now, 0
        self.used += 1
        return self.used <= REPLIES_PER_WINDOW


class TaskNotificationsConsumer(AsyncWebsocketConsumer):
    groups_joined: tuple[str, ...] = ()

    async def connect(self) -> None:
        user = self.scope["user"]
        if not user.is_authenticated:
            # Accept, then close with a code the page's script can read (a rejected handshake
            # looks the same as a network error to a browser).
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.all_users = user.is_staff and query.get("scope") == ["all"]
        self.groups_joined = (STAFF_GROUP,) if self.all_users else (user_group_name(user.pk),)
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        self._budgets = {"pong": _ReplyBudget(), "snapshot": _ReplyBudget(), "error": _ReplyBudget()}
        await self.accept()
        await self._send_snapshot()

    async def disconnect(self, code: int) -> None:
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if bytes_data is not None:
            return await self._reply_error("Binary frames are not supported.")
        if len(text_data) > MAX_CLIENT_MESSAGE_CHARS:
            return await self._reply_error("Message too large.")
        try:
            message = orjson.loads(text_data)
        except orjson.JSONDecodeError:
            return await self._reply_error("Invalid JSON.")
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "ping":
            if self._budgets["pong"].allow():
                await self._send_json({"type": "pong"})
        elif kind == "snapshot":
            if self._budgets["snapshot"].allow():
                await self._send_snapshot()
        else:
            await self._reply_error("Unknown message type.")

    async def task_update(self, event: dict) -> None:
        """A task changed (sent by notifications.publish as type "task.update")."""
        await self._send_json({"type": "task", "task": event["task"]})

    async def task_removed(self, event: dict) -> None:
        """A task was deleted (notifications.publish_task_removed, type "task.removed")."""
        await self._send_json({"type": "task_removed", "id": event["id"]})

    async def _send_snapshot(self) -> None:
        tasks = await database_sync_to_async(task_snapshot_for)(user=self.scope["user"], all_users=self.all_users)
        await self._send_json({"type": "snapshot", "tasks": tasks})

    async def _reply_error(self, error: str) -> None:
        if self._budgets["error"].allow():
            await self._send_json({"type": "error", "error": error})

    async def _send_json(self, payload: dict) -> None:
        await self.send(text_data=orjson.dumps(payload).decode())

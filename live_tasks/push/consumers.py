"""The base of every live feed: a socket whose authority is its session, and ends with it.

A feed (live_tasks/consumers.py) says which groups carry its messages and what its snapshot is; this
class does the rest, the same for every feed (docs/protocol.md):

- at the handshake: anonymous or stale sessions are closed with 4401; the socket joins its
  feed's groups and the control groups of its session and its user (live_tasks/push/groups.py);
- it re-checks its session (live_tasks/push/sessions.py) when told to (a logout, a password change,
  a deactivation...: live_tasks/push/revocation.py), before answering a snapshot request, at the
  session's expiry date, and every LIVE_TASKS["SESSION_RECHECK_SECONDS"] (with jitter) for changes made
  behind Django's back; a failed check closes it with 4401 and nothing more is sent on it;
- at most LIVE_TASKS["SOCKETS_PER_USER"] sockets per user over all daphnes: past it the oldest is closed
  with 4429, on which live.js does not reconnect, so that tabs do not evict each other in a loop;
- answers to client messages (pong, snapshot, error) are rate-limited per kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs

import orjson
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.utils import timezone
from django.utils.translation import gettext
from redis.exceptions import RedisError

from .. import stats
from ..conf import live_settings
from .groups import session_group_name, user_sockets_group_name
from .sessions import SessionCheck, session_check, staff_feed_allowed
from .sockets import UserSockets

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_TOO_MANY_SOCKETS = 4429
# A check that could not run (the database away): the socket closes as after any server error, and
# the page reconnects with its backoff, to be authenticated again at the handshake.
CLOSE_CHECK_FAILED = 1011
# Client messages are tiny ({"type": "ping"}); anything longer is refused without parsing it.
# (daphne itself closes the socket on a message over 1 MiB, before it reaches this consumer.)
MAX_CLIENT_MESSAGE_CHARS = 4096
# Answers to client messages are rate-limited per kind (pong, snapshot, error), so a client that
# floods and never reads cannot make the server buffer an unbounded backlog, nor turn snapshot
# requests into a flood of database queries. Past the budget, messages are dropped unanswered.
REPLIES_PER_WINDOW = 10
REPLY_WINDOW_SECONDS = 10.0
# Each re-check waits the period times a factor in this range: sockets opened together (a server
# restart) do not all query the database in the same second. The upper end makes the bound.
RECHECK_JITTER = (0.75, 1.25)
# An order to re-check comes from inside the request that changes the user (a password change):
# wait for that request to finish (it re-keys its own session when the user changed their own
# password) so that the page's one retry after 4401 finds the new cookie. Messages for the socket
# wait behind it, and are dropped if the check fails.
RECHECK_ORDER_DELAY_SECONDS = 0.5


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


class SessionFeedConsumer(AsyncWebsocketConsumer):
    """Subclasses implement `feed_groups` and `send_snapshot`, and handlers for their messages
    that send through `send_json` (which sends nothing once the socket's authority ended)."""

    groups_joined: tuple[str, ...] = ()
    ended = False
    staff_feed = False
    # The permission a staff feed needs beside is_staff (a subclass names its own), checked at the
    # handshake and at every re-check of the session.
    staff_permission: str | None = None
    session_key: str | None
    user_id: int
    _watch: asyncio.Task[None] | None = None
    _registration: UserSockets | None = None
    _counted_open = False

    # --- For subclasses ---------------------------------------------------------------------

    def feed_groups(self) -> tuple[str, ...]:
        raise NotImplementedError

    async def send_snapshot(self) -> None:
        raise NotImplementedError

    def wants_staff_feed(self) -> bool:
        """`?scope=all` from staff with `staff_permission`: the feed of every user (re-checked).
        Reads the database (the user's permissions): call it off the event loop."""
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        # Asked once connect() found the user signed in: the lazy object holds an instance of the user model.
        user = cast("User", self.scope["user"])
        return query.get("scope") == ["all"] and staff_feed_allowed(user, self.staff_permission)

    async def send_json(self, payload: dict[str, Any]) -> None:
        if not self.ended:
            await self.send(text_data=orjson.dumps(payload).decode())

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its `aclose_old_connections()` before every message: a hop
        to a thread and back for each push on each socket (9% of a daphne's busy time in the burst
        benchmark, docs/performance.md), while every database read here goes through
        `database_sync_to_async`, which closes stale connections itself. A subclass's handlers
        must read the database the same way."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # --- Connection -------------------------------------------------------------------------

    async def connect(self) -> None:
        user = self.scope["user"]
        assert user is not None  # AuthMiddlewareStack puts a user (AnonymousUser if none) in every scope
        session = self.scope.get("session")
        self.session_key = getattr(session, "session_key", None)
        if not user.is_authenticated or not self.session_key:
            # Accept, then close with a code the page's script can read (a rejected handshake
            # looks the same as a network error to a browser).
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            stats.count("live_tasks_sockets_closed", reason="anonymous")
            return
        self.user_id = user.pk
        self.staff_feed = await database_sync_to_async(self.wants_staff_feed)()
        self._budgets = {"pong": _ReplyBudget(), "snapshot": _ReplyBudget(), "error": _ReplyBudget()}
        # Control groups first: a revocation published from here on reaches this socket.
        self.groups_joined = (session_group_name(self.session_key), user_sockets_group_name(user.pk))
        self.groups_joined += self.feed_groups()
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        # Checked again now that the control groups are joined: a logout or password change
        # between the handshake's authentication and here would otherwise go unnoticed.
        try:
            check = await self._check()
        except Exception:
            logger.exception("Checking a new live socket's session failed; closing it")
            return await self._end(CLOSE_CHECK_FAILED)
        if not check.valid:
            return await self._end(CLOSE_UNAUTHENTICATED)
        self._counted_open = True
        stats.socket_opened()  # this daphne's count of live sockets, reported with its name
        await self._register()
        self._watch = asyncio.create_task(self._keep_checking(check.expires_at))
        await self.send_snapshot()

    async def disconnect(self, code: int) -> None:
        if self._watch is not None:
            self._watch.cancel()
        if self._counted_open:
            self._counted_open = False
            stats.socket_closed()
        await self._leave_groups()
        if self._registration is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._registration.unregister()

    async def _leave_groups(self) -> None:
        groups, self.groups_joined = self.groups_joined, ()
        for group in groups:
            with contextlib.suppress(Exception):
                await self.channel_layer.group_discard(group, self.channel_name)

    async def _end(self, code: int) -> None:
        """The socket's authority ended: stop sending, leave every group, close with `code`."""
        if self.ended:
            return
        self.ended = True
        reason = {CLOSE_TOO_MANY_SOCKETS: "evicted", CLOSE_CHECK_FAILED: "check_failed"}.get(code, "revoked")
        stats.count("live_tasks_sockets_closed", reason=reason)
        await self._leave_groups()
        await self.close(code=code)

    # --- Session checks ---------------------------------------------------------------------

    async def _check(self) -> SessionCheck:
        assert self.session_key is not None  # connect() closes a socket without a session at once
        return await database_sync_to_async(session_check)(
            session_key=self.session_key,
            user_id=self.user_id,
            staff_feed=self.staff_feed,
            staff_permission=self.staff_permission,
        )

    async def _check_or_end(self) -> bool:
        """Check now (an order to, a snapshot request); a check that raises ends the socket too:
        raised out of a handler it would kill the consumer before disconnect() cleans up."""
        try:
            check = await self._check()
        except Exception:
            logger.exception("Checking a live socket's session failed; closing it")
            await self._end(CLOSE_CHECK_FAILED)
            return False
        if not check.valid:
            await self._end(CLOSE_UNAUTHENTICATED)
        return check.valid

    async def _keep_checking(self, expires_at: datetime | None) -> None:
        period = live_settings.SESSION_RECHECK_SECONDS
        while not self.ended:
            delay = period * random.uniform(*RECHECK_JITTER)
            if expires_at is not None:
                # Wake at the session's expiry date too (a little after, so it has passed).
                delay = min(delay, max(0.0, (expires_at - timezone.now()).total_seconds()) + 0.5)
            await asyncio.sleep(delay)
            try:
                check = await self._check()
            except Exception:
                logger.exception("Re-checking a live socket's session failed; trying again later")
                continue
            if not check.valid:
                await self._end(CLOSE_UNAUTHENTICATED)
                return
            expires_at = check.expires_at
            await self._refresh_registration()

    # --- Sockets per user -------------------------------------------------------------------

    async def _register(self) -> None:
        registration = UserSockets(self.user_id, self.channel_name)
        try:
            evicted = await registration.register(live_settings.SOCKETS_PER_USER)
        except (RedisError, OSError) as exc:
            # The cap is a guard, not a gate: a Redis blip must not refuse sockets.
            logger.warning("Could not count the user's live sockets: %r", exc)
            return
        self._registration = registration
        for channel in evicted:
            with contextlib.suppress(Exception):
                await self.channel_layer.send(channel, {"type": "socket.evict"})

    async def _refresh_registration(self) -> None:
        if self._registration is None:
            return await self._register()  # Redis was away at connect
        with contextlib.suppress(RedisError, OSError):
            await self._registration.refresh()
        return None

    # --- Messages from the server side ------------------------------------------------------

    async def socket_revoke(self, event: dict[str, Any]) -> None:
        """Sent by live_tasks.push.publish: close (a logout), or re-check and close if invalid."""
        if self.ended:
            return
        if event.get("recheck"):
            await asyncio.sleep(RECHECK_ORDER_DELAY_SECONDS)
            await self._check_or_end()
        else:
            await self._end(CLOSE_UNAUTHENTICATED)

    async def socket_evict(self, event: dict[str, Any]) -> None:
        """Sent by a newer socket of the same user that went over LIVE_TASKS["SOCKETS_PER_USER"]."""
        self._registration = None  # already removed from the set
        await self._end(CLOSE_TOO_MANY_SOCKETS)

    # --- Messages from the client -----------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.ended:
            return None
        if bytes_data is not None or text_data is None:
            return await self._reply_error(gettext("Binary frames are not supported."))
        if len(text_data) > MAX_CLIENT_MESSAGE_CHARS:
            return await self._reply_error(gettext("Message too large."))
        try:
            message = orjson.loads(text_data)
        except orjson.JSONDecodeError:
            return await self._reply_error(gettext("Invalid JSON."))
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "ping":
            if self._budgets["pong"].allow():
                await self.send_json({"type": "pong"})
        elif kind == "snapshot":
            # Never answered with data before the session is checked again.
            if self._budgets["snapshot"].allow() and await self._check_or_end():
                await self.send_snapshot()
        else:
            await self._reply_error(gettext("Unknown message type."))
        return None

    async def _reply_error(self, error: str) -> None:
        if self._budgets["error"].allow():
            await self.send_json({"type": "error", "error": error})

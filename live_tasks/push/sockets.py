"""How many live sockets each user has open, over every daphne process: the per-user cap.

One sorted set per user in the channel layer's Redis (same connection settings, same prefix).
A member is "<connected at, ms>:<channel name>", scored by when its socket last said it was alive;
sockets refresh their score (and the key's expiry) at every session re-check, so the entries of a
daphne that was killed go stale and are dropped after STALE_AFTER_RECHECKS re-check periods, and
the key of a user with no live socket left expires.
Registering is one Lua script, atomic across processes: past the cap, the oldest sockets are
removed from the set and returned, and the caller tells each to close (layer.send reaches it on
whichever daphne holds it).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any

from channels_redis.utils import create_pool, decode_hosts
from django.conf import settings
from redis.asyncio import Redis

from ..conf import live_settings

STALE_AFTER_RECHECKS = 3

_REGISTER = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2] - ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local over = #members - tonumber(ARGV[3])
if over <= 0 then return {} end
table.sort(members)
local evicted = {}
for i = 1, over do
  redis.call('ZREM', KEYS[1], members[i])
  evicted[i] = members[i]
end
return evicted
"""

# One client per event loop: daphne has one; tests make one per test.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Redis] = weakref.WeakKeyDictionary()


def _layer_config() -> dict[str, Any]:
    config: dict[str, Any] = settings.CHANNEL_LAYERS["default"].get("CONFIG", {})
    return config


def _client() -> Redis:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        # As the layer reads its hosts: a URL string (as the README writes it), a dict, a (host, port).
        host = decode_hosts(_layer_config().get("hosts"))[0]
        client = _clients[loop] = Redis(connection_pool=create_pool(host))
    return client


def _key(user_id: int) -> str:
    prefix = _layer_config().get("prefix", "asgi")
    return f"{prefix}:sockets:user:{user_id}"


def stale_after_seconds() -> int:
    return int(STALE_AFTER_RECHECKS * live_settings.SESSION_RECHECK_SECONDS * 1.25) + 5


class UserSockets:
    """The entry of one socket in its user's set."""

    def __init__(self, user_id: int, channel_name: str) -> None:
        self.key = _key(user_id)
        self.member = f"{time.time() * 1000:016.0f}:{channel_name}"

    async def register(self, cap: int) -> list[str]:
        """Add this socket; return the channel names of the sockets it pushed over the cap."""
        evicted = await _client().eval(_REGISTER, 1, self.key, self.member, time.time(), cap, stale_after_seconds())
        return [(m.decode() if isinstance(m, bytes) else m).split(":", 1)[1] for m in evicted]

    async def refresh(self) -> None:
        """Say this socket is alive, and keep its user's set from expiring while it is."""
        async with _client().pipeline(transaction=False) as pipe:
            pipe.zadd(self.key, {self.member: time.time()})
            pipe.expire(self.key, stale_after_seconds())
            await pipe.execute()

    async def unregister(self) -> None:
        await _client().zrem(self.key, self.member)

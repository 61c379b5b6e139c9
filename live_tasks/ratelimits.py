"""Per-user rate limits shared by every process: fixed windows counted in Redis.

A limit is `limit` hits per `window` seconds for one key (say, one user's task launches). Windows
are aligned to the clock, so each key costs one counter in Redis that expires with its window.
The counter lives in the job queue's Redis (django-rq's connection settings: URL, TLS or
Sentinel), on the process's one client of it (redisclients), so several web processes share it.
It imports nothing of the site: the task launches and a site's own limits (posts, sign-ups) use it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from . import redisclients, stats

KEY_PREFIX = "ratelimit"


class RateLimited(Exception):
    """Over the limit; `retry_after` is the whole number of seconds until the window ends."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limit:
    name: str  # part of the Redis key: "task-launch"
    limit: int
    window_seconds: int

    def hit(self, key: str | int) -> int | None:
        """Count one hit for `key`. Returns None if it is within the limit, else the seconds until
        the window ends (for Retry-After). Raises RedisError when Redis cannot be reached."""
        now = time.time()
        window_start = int(now // self.window_seconds) * self.window_seconds
        redis_key = f"{KEY_PREFIX}:{self.name}:{key}:{window_start}"
        # The pipeline holds the client's pool, not the client: keep the client referenced.
        client = _connection()
        with client.pipeline() as pipe:
            pipe.incr(redis_key)
            pipe.expire(redis_key, self.window_seconds + 1)
            count, _ = pipe.execute()
        if count <= self.limit:
            return None
        stats.count("live_tasks_rate_limited", limit=self.name)  # in memory; written once a second
        return max(1, math.ceil(window_start + self.window_seconds - now))


# The process's one client, shared with the job queue: never one per call (redisclients says why).
_connection = redisclients.rq_connection

"""The process's Redis client for django-rq's connection settings: built once, under a lock, never closed.

Every client that django_rq.get_connection() returns owns its connection pool (redis-py 8.1's
`Redis.from_url`, `Redis(host=...)` and Sentinel's `master_for` all set
`auto_close_connection_pool`), and a client that owns its pool closes it when it is collected:
`Redis.__del__` -> `close()` -> `ConnectionPool.disconnect()`, which disconnects the connections
other threads are using too. redis-py then raises `ValueError: I/O operation on closed file`
there, which is no RedisError. A `functools.cache`d builder is not built once: daphne runs each
request's sync view in a thread of its own (project/asgi.py), several first requests miss the
cache together, each builds a client and stores it over the last, and an overwritten client
closes its pool under whichever thread still works on it when its last reference goes.

So `once_per_process` builds under a lock and keeps what it built for the life of the process,
and `rq_connection` disowns its pool, so that no client ever closes it. Forks stay safe: redis-py's
pool notices a new process id and starts afresh in the child (a worker's work horses), and the
build lock is made anew in a forked child, in case another thread held it at the fork.

It imports nothing of the site: the rate limits, the tasks' queue and a site's own queues share it.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import django_rq
from redis import Redis

T = TypeVar("T")


class ProcessOnce(Generic[T]):
    """`build()` run once per process, on first use, whatever the number of threads asking at once
    (`build` must not return None: None means not built yet)."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._value: T | None = None
        _instances.add(self)

    def __call__(self) -> T:
        value = self._value  # once built, no lock: a read of one attribute is atomic
        if value is None:
            with self._lock:
                value = self._value
                if value is None:
                    value = self._value = self._build()
        return value

    def cache_clear(self) -> None:
        """Forget the value (tests only: whatever still uses it keeps it; nothing closes it)."""
        with self._lock:
            self._value = None

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()


_instances: weakref.WeakSet[ProcessOnce[Any]] = weakref.WeakSet()


def _new_locks_after_fork() -> None:
    for instance in list(_instances):
        instance._after_fork_in_child()


os.register_at_fork(after_in_child=_new_locks_after_fork)


def once_per_process(build: Callable[[], T]) -> ProcessOnce[T]:
    """Decorator: a builder of a value that the whole process shares (a client, a queue)."""
    return ProcessOnce(build)


def disowned(client: Redis) -> Redis:
    """`client`, made never to close its pool: not when closed, not when collected."""
    client.auto_close_connection_pool = False
    return client


@once_per_process
def rq_connection() -> Redis:
    """The client of the tasks' queue's connection in RQ_QUEUES (URL, TLS or Sentinel): the queue's Redis.

    One per process, with one pool, for the job queue and the rate limits alike.
    """
    from .conf import live_settings

    return disowned(django_rq.get_connection(live_settings.QUEUE))

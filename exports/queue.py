"""The RQ queue this project enqueues on, built once per process.

django_rq.get_queue() opens a new Redis connection pool on every call; a launch endpoint that
called it per request would reconnect every time. redis-py's pool is fork-safe.
"""

from __future__ import annotations

import functools

import django_rq
from rq import Queue


@functools.cache
def default_queue() -> Queue:
    return django_rq.get_queue("default")

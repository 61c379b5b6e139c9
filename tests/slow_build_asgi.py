"""The project's ASGI app, in a daphne where building a Redis client or a queue takes 200 ms.

In a freshly started, busy server the first build of a client is slow by chance (a thread that
loses the GIL mid-build waits behind every other runnable thread); here it always is, so threads
that ask for the process's client while one is being built always overlap with the build. The
builds are django-rq's own, on the real Redis: only their timing changes
(tests/exports/test_launch_burst.py).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import django_rq

from project.asgi import application

BUILD_SECONDS = 0.2


def _slow(build: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(build)
    def slow_build(*args: Any, **kwargs: Any) -> Any:
        time.sleep(BUILD_SECONDS)
        return build(*args, **kwargs)

    return slow_build


django_rq.get_connection = _slow(django_rq.get_connection)
django_rq.get_queue = _slow(django_rq.get_queue)

__all__ = ["application"]

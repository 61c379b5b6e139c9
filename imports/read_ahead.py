"""Iterate over what a thread produces ahead of the caller: the import's parse beside its writes."""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

# While a read-ahead runs, a thread that waits on the database takes the GIL back within this.
# Python's default, 5 ms, was paid at each of an import batch's round trips (docs/performance.md).
SWITCH_INTERVAL = 0.0005
# The interval is the process's: set by the first read-ahead running, restored by the last.
_running = 0
_running_lock = threading.Lock()
_interval_before = sys.getswitchinterval()


@contextmanager
def _short_switch_interval() -> Iterator[None]:
    global _running, _interval_before  # noqa: PLW0603 -- the process's one interval
    with _running_lock:
        if _running == 0:
            _interval_before = sys.getswitchinterval()
            sys.setswitchinterval(SWITCH_INTERVAL)
        _running += 1
    try:
        yield
    finally:
        with _running_lock:
            _running -= 1
            if _running == 0:
                sys.setswitchinterval(_interval_before)


@contextmanager
def read_ahead(items: Iterable[T], *, depth: int) -> Iterator[Iterator[T]]:
    """`items` produced by a thread, up to `depth` ahead of the caller, who iterates them in order.

    What the producer raises is raised to the caller at that point of the sequence. Leaving the
    block, however early, stops the producer and waits for it, so nothing it reads (the upload)
    is closed under it.
    """
    ahead: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                ahead.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((False, None))
        except BaseException as exc:  # noqa: BLE001 -- handed to the caller, who raises it
            put((False, exc))

    def consume() -> Iterator[T]:
        while True:
            more, value = ahead.get()
            if more:
                yield value
            elif value is None:
                return
            else:
                raise value

    producer = threading.Thread(target=produce, name="read-ahead", daemon=True)
    with _short_switch_interval():
        producer.start()
        try:
            yield consume()
        finally:
            stop.set()
            producer.join()

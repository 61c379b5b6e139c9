"""The import's read-ahead: the parse runs in a thread a few batches ahead of the database writes."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from imports.read_ahead import SWITCH_INTERVAL, read_ahead
from imports.reader import ImportFileError


def producer_alive() -> bool:
    return any(thread.name == "read-ahead" and thread.is_alive() for thread in threading.enumerate())


def test_items_arrive_in_order_and_the_producers_error_where_it_happened():
    def items():
        yield from range(5)
        raise ImportFileError("Post 6 has no body.")

    received: list[int] = []
    with pytest.raises(ImportFileError, match="Post 6"), read_ahead(items(), depth=2) as ahead:
        received.extend(ahead)
    assert received == [0, 1, 2, 3, 4]


def test_the_producer_stays_at_most_depth_ahead_and_stops_when_the_caller_leaves_early():
    produced: list[int] = []

    def endless():
        number = 0
        while True:
            produced.append(number)
            yield number
            number += 1

    with read_ahead(endless(), depth=2) as ahead:
        assert next(ahead) == 0
        time.sleep(0.3)  # the producer runs on meanwhile, as far as it may
        assert len(produced) <= 1 + 2 + 1, produced  # the one taken, two queued, one waiting to go in
        assert producer_alive()
    assert not producer_alive(), "the block ended while its producer could still read the upload"
    stopped_at = len(produced)
    time.sleep(0.2)
    assert len(produced) == stopped_at


def test_the_gil_switch_interval_is_short_only_while_one_runs_even_when_two_overlap():
    """Two imports in one process (a threaded worker) may end in either order."""
    before = sys.getswitchinterval()
    first, second = read_ahead(iter([1]), depth=1), read_ahead(iter([2]), depth=1)
    assert list(first.__enter__()) == [1]
    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
    assert list(second.__enter__()) == [2]
    first.__exit__(None, None, None)
    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL), "the second still runs"
    second.__exit__(None, None, None)
    assert sys.getswitchinterval() == before

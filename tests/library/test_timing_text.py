"""How long a task took, in words: the server's text, which live.js writes identically
(tests/e2e/test_live_js.py compares the two in a browser)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from live_tasks import task_to_dict
from live_tasks.templatetags.live_tasks import duration_text, elapsed_ms, task_timing

from .helpers import TaskFactory

T0 = datetime(2026, 11, 24, 10, 26, 3, 123999, tzinfo=UTC)

# Milliseconds -> text. A task under a second is not "0 s": a demo export takes 0.15 s.
DURATIONS = {
    0: "under 0.1 s",
    49: "under 0.1 s",
    50: "0.1 s",
    150: "0.2 s",  # halves go up, as JavaScript's Math.round
    249: "0.2 s",
    4_950: "5.0 s",
    9_949: "9.9 s",
    9_950: "10 s",
    42_400: "42 s",
    59_499: "59 s",
    59_500: "1 min 0 s",
    125_000: "2 min 5 s",
}


@pytest.mark.parametrize(("ms", "text"), DURATIONS.items())
def test_durations_read_naturally_at_every_scale(ms, text):
    assert duration_text(ms) == text


def test_elapsed_time_counts_whole_milliseconds_as_javascript_reads_the_times():
    # Date.parse drops the microseconds of each end: 10:26:03.123999 to 10:26:03.273001 is 150 ms.
    assert elapsed_ms(T0, T0 + timedelta(microseconds=149_002)) == 150
    assert elapsed_ms(T0.isoformat(), (T0 + timedelta(seconds=1)).isoformat()) == 1000
    assert elapsed_ms(None, T0) is None


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        ({"status": "queued"}, "Waiting for a worker…"),
        ({"status": "succeeded", "started_at": T0, "finished_at": T0 + timedelta(milliseconds=150)}, "Took 0.2 s"),
        ({"status": "failed", "started_at": T0, "finished_at": T0 + timedelta(seconds=75)}, "Took 1 min 15 s"),
        ({"status": "failed", "finished_at": T0}, ""),  # failed before any worker took it
    ],
)
def test_the_timing_line_of_a_finished_or_waiting_task(db, changes, text):
    assert task_timing(task_to_dict(TaskFactory(**changes))) == text


def test_a_running_task_shows_its_elapsed_time_and_an_estimate(db):
    started = datetime.now(UTC) - timedelta(seconds=30)
    running = task_to_dict(TaskFactory(status="running", started_at=started, progress=25))
    assert task_timing(running) in {"Elapsed 30 s · about 1 min 30 s left", "Elapsed 31 s · about 1 min 33 s left"}

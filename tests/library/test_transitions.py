"""The transition rules, whole: every current status x every transition, allowed or refused.

The expected table is written out here, not imported from live_tasks/state.py, so that a change to the
rules has to change this contract on purpose.
"""

from __future__ import annotations

import pytest

from live_tasks.models import Task
from live_tasks.state import (
    task_mark_cancelled,
    task_mark_expired,
    task_mark_failed,
    task_mark_running,
    task_mark_succeeded,
    task_set_detail,
    task_set_progress,
)

from .helpers import TaskFactory

CALLS = {
    "start": lambda task_id: task_mark_running(task_id),
    "progress": lambda task_id: task_set_progress(task_id, progress=50, detail="half"),
    "note": lambda task_id: task_set_detail(task_id, "a note"),
    "succeed": lambda task_id: task_mark_succeeded(task_id, detail="done"),
    "fail": lambda task_id: task_mark_failed(task_id, error="broken"),
    "cancel": lambda task_id: task_mark_cancelled(task_id),
    "expire": lambda task_id: task_mark_expired(task_id),
}
# transition -> (the statuses it is allowed from, the status it leaves the task in)
ALLOWED = {
    "start": ({"queued"}, "running"),
    "progress": ({"running"}, None),
    "note": ({"queued", "running"}, None),
    "succeed": ({"running"}, "succeeded"),
    "fail": ({"queued", "running"}, "failed"),
    "cancel": ({"queued", "running"}, "cancelled"),
    "expire": ({"succeeded"}, None),
}
STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"]


@pytest.mark.parametrize("transition", list(CALLS))
@pytest.mark.parametrize("status", STATUSES)
def test_each_transition_from_each_status_is_allowed_or_refused(db, status, transition):
    task = TaskFactory(status=status, progress=100 if status == "succeeded" else 10, seq=5, file="x/y.json")
    before = Task.objects.get(pk=task.pk)

    result = CALLS[transition](task.id)

    after = Task.objects.get(pk=task.pk)
    allowed_from, ends_in = ALLOWED[transition]
    if status in allowed_from:
        assert result is not None, f"{transition} from {status} must be allowed"
        assert after.seq == before.seq + 1, "every change bumps seq"
        assert after.status == (ends_in or status)
    else:
        assert result is None, f"{transition} from {status} must be refused"
        assert (after.status, after.seq, after.progress, after.detail, after.error, after.file.name) == (
            before.status,
            before.seq,
            before.progress,
            before.detail,
            before.error,
            before.file.name,
        ), "a refused transition changes nothing"


def test_the_table_covers_every_status_and_the_code_has_no_other_transition():
    from live_tasks.state import TRANSITIONS

    assert set(TRANSITIONS) == set(CALLS)
    assert {s.value for s in Task.Status} == set(STATUSES)


def test_a_failed_or_cancelled_task_is_marked_for_cleanup(db):
    failed, cancelled = TaskFactory(status="running"), TaskFactory(status="queued")
    task_mark_failed(failed.id, error="x")
    task_mark_cancelled(cancelled.id)
    assert Task.objects.filter(pk__in=[failed.pk, cancelled.pk], needs_cleanup=True).count() == 2


@pytest.mark.parametrize("last_detail", ["Starting…", "Imported 120,000 posts so far", "Retrying (attempt 2 of 4)…"])
def test_a_failed_task_keeps_its_error_and_no_progress_line(db, last_detail):
    """Beside "The posts import failed", a leftover "Starting…" would say it is still going."""
    task = TaskFactory(status="running", detail=last_detail)
    failed = task_mark_failed(task.id, error="The file is not a posts export.")
    assert failed is not None
    assert (failed.detail, failed.error) == ("", "The file is not a posts export.")

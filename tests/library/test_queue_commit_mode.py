"""The core's enqueue works whatever django-rq's COMMIT_MODE, so no system check is needed for it.

The core enqueues in its own transaction.on_commit; django-rq's "on_db_commit" (its default) would
defer again inside an atomic block and "request_finished" always, each returning None and writing
the job into a pipeline already executed: the job would be lost (live_tasks/queue.py: default_queue).
"""

from __future__ import annotations

import uuid

import pytest
from django.db import transaction

from live_tasks.kinds import get_kind
from live_tasks.queue.rq import default_queue, task_job_enqueue

from .testapp.kinds import TEST_STEPS

pytestmark = pytest.mark.rq_only  # django-rq's own setting


@pytest.fixture
def queue_built_under(settings, queue):
    def build(mode: str):
        settings.RQ = {**settings.RQ, "COMMIT_MODE": mode}
        default_queue.cache_clear()  # built once per process: build it again under this mode
        return default_queue()

    yield build
    default_queue.cache_clear()


@pytest.mark.parametrize("mode", ["auto", "on_db_commit", "request_finished"])
def test_a_job_enqueued_inside_a_transaction_is_queued(db, queue_built_under, mode):
    queue = queue_built_under(mode)
    task_id = str(uuid.uuid4())
    with transaction.atomic():  # as under ATOMIC_REQUESTS, or a test's captured on-commit callbacks
        job = task_job_enqueue(task_id, kind=get_kind(TEST_STEPS))
    assert job is not None and job.id == task_id
    assert queue.job_ids == [task_id]

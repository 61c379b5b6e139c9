"""A worker's own database work (a cancel's stop callback) never reaches the work horses it forks."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection

from exports.services import export_start
from live_tasks.models import Task
from live_tasks.services import task_cancel
from posts.services import posts_seed
from tests.factories import UserFactory
from tests.processes import CEILING, child_env, wait_for_task, wait_until, worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

POSTS = 20_000


def sessions_idle_in_transaction() -> list[tuple[str, str]]:
    """Sessions on the test database left inside a transaction (none on SQLite, which has no sessions)."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT state, query FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%%'"
        )
        return cursor.fetchall()


def test_two_exports_cancelled_mid_stream_leave_the_next_export_on_that_worker_working(smtp_server):
    user = UserFactory()
    posts_seed(author=user, count=POSTS)
    # One post per database round trip (on PostgreSQL one FETCH from the server-side cursor), so
    # streaming takes seconds and a cancel before half way lands in the middle of it. Progress is
    # checked only every half second, so the stop-job command, not the horse itself, ends the job.
    name = "worker-cancelled-mid-stream"
    env = child_env(EMAIL_URL=smtp_server.url, EXPORT_CHUNK_SIZE="1", TASK_PROGRESS_INTERVAL="0.5")
    log = Path(env["TEST_OUTPUT_DIR"]) / f"{name}.log"
    with worker(env, name=name):
        for cancels in (1, 2):
            task = export_start(user=user)
            wait_for_task(task.id, lambda t: t.status == "running" and 0 < t.progress < 50, CEILING)
            task_cancel(task=task)
            # The worker killed the horse mid-stream and ran the stop callback itself.
            wait_until(lambda: log.read_text().count("stopped by user") == cancels)  # noqa: B023
            assert sessions_idle_in_transaction() == []
        third = export_start(user=user)
        done = wait_for_task(third.id, lambda t: t.is_finished, CEILING)
        assert sessions_idle_in_transaction() == []
    assert done.status == Task.Status.SUCCEEDED, (done.error, log.read_text())
    assert done.detail.startswith(f"{POSTS:,} posts exported")
    assert [m["To"] for m in smtp_server.messages] == [user.email], "only the third export emailed"
    cancelled = Task.objects.filter(user=user, status=Task.Status.CANCELLED)
    assert cancelled.count() == 2 and all(not t.file and t.progress < 50 for t in cancelled)

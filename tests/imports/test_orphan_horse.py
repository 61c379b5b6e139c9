"""A worker killed mid-import, its work horse left behind: the horse dies with its worker, and no
post of the file is ever visible (docs/imports.md: all or nothing).

RQ puts each work horse in a process group of its own, so a worker that dies (SIGKILL here, as
the OOM killer or supervisord's kill after stopwaitsecs would) used to leave its horse running
for its whole import, staging posts for a task that the safety net had failed and cleaned up.
"""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime

import psutil
import pytest

from imports.services import import_start
from live_tasks.errors import worker_lost_error
from live_tasks.files import work_dir
from live_tasks.models import Task
from posts.models import PendingBatch, Post
from tests.exports.test_faults import WORKER_LOST_BOUND_SECONDS
from tests.factories import PostFactory, UserFactory
from tests.library.helpers import HORSE_GONE_BOUND_SECONDS, gone
from tests.processes import CEILING, child_env, scheduler, wait_until, worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

IMPORT_POSTS = 1_000_000
KILL_AFTER_STAGED = 20_000


def big_import_file(name: str, count: int = IMPORT_POSTS):
    """A plain export file of `count` posts, written in pieces (about 70 MB for a million)."""
    path = work_dir() / f"test-upload-{name}.json"
    moment = datetime(2024, 1, 1, tzinfo=UTC).isoformat()
    with open(path, "w") as out:
        out.write(f'{{"user": "someone", "count": {count}, "posts": [')
        for start in range(0, count, 100_000):
            out.write(
                ",".join(
                    f'{{"body": "Imported {i}", "created_at": "{moment}"}}'
                    for i in range(start, min(count, start + 100_000))
                )
            )
            if start + 100_000 < count:
                out.write(",")
        out.write("]}")
    return path


def watch_until_cleaned_up(task_id, horse: psutil.Process, killed_at: float, user) -> tuple[Task, float, set[int]]:
    """Poll the user's visible posts until the task is over and cleaned up; when the horse went."""
    horse_gone_after, seen = None, set()
    deadline = time.monotonic() + CEILING
    while True:
        seen.add(Post.objects.by_author(user).count())
        if horse_gone_after is None and gone(horse):
            horse_gone_after = time.monotonic() - killed_at
        task = Task.objects.get(pk=task_id)
        if task.is_finished and not task.needs_cleanup and horse_gone_after is not None:
            return task, horse_gone_after, seen
        assert time.monotonic() < deadline, f"not over in {CEILING}s: {task.__dict__}, horse gone: {gone(horse)}"
        time.sleep(0.05)


def test_a_worker_killed_mid_import_takes_its_horse_with_it_and_nothing_is_ever_visible():
    user = UserFactory()
    PostFactory(author=user, body="mine before")
    upload = big_import_file(f"orphan-{user.pk}")
    env = child_env()
    with scheduler(env, name="scheduler-orphan-horse"), worker(env, name="worker-orphan-horse") as doomed:
        task = import_start(user=user, upload=upload, file_name="big.json")
        # A few batches in (this machine stages a few thousand posts a second: 10% would take a
        # minute, and changes nothing that matters here).
        wait_until(lambda: Post.all_objects.filter(author=user).count() > KILL_AFTER_STAGED, CEILING, 0.2)
        (horse,) = psutil.Process(doomed.pid).children()

        doomed.send_signal(signal.SIGKILL)  # the worker only: its horse is in a group of its own
        killed_at = time.monotonic()
        doomed.wait(10)
        ended, horse_gone_after, seen = watch_until_cleaned_up(task.id, horse, killed_at, user)
        took = time.monotonic() - killed_at

    assert horse_gone_after < HORSE_GONE_BOUND_SECONDS, f"the horse outlived its worker by {horse_gone_after:.1f}s"
    assert seen == {1}, "only the post the user had was ever visible"
    assert (ended.status, ended.error) == ("failed", worker_lost_error("Posts import"))
    assert took < WORKER_LOST_BOUND_SECONDS, f"ended {took:.1f}s after the kill"
    assert list(Post.all_objects.filter(author=user).values_list("body", flat=True)) == ["mine before"]
    assert not PendingBatch.objects.exists()

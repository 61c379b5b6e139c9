"""Old finished tasks are pruned on a schedule with their files and job records; cancels leave none."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from live_tasks.conf import live_settings
from live_tasks.models import Task
from live_tasks.queue import task_job_state
from live_tasks.scheduler import schedule
from live_tasks.services import tasks_delete_old

from .helpers import TaskFactory, child_env, put_job, scheduler

pytestmark = pytest.mark.django_db(transaction=True)


def finished_task(user, *, days_ago: float, status=Task.Status.SUCCEEDED, with_job=True) -> Task:
    finished = timezone.now() - timedelta(days=days_ago)
    task = TaskFactory(user=user, status=status, finished_at=finished, created_at=finished)
    if status == Task.Status.SUCCEEDED:
        task.file = default_storage.save(f"tasks/{task.id}/posts.json", ContentFile(b"[]"))
        task.save(update_fields=["file"])
    if with_job:  # its job's record, as the queue keeps a failed job's (RQ: in its failed registry)
        put_job(str(task.id), "failed")
    return task


def test_prune_deletes_old_finished_tasks_their_files_and_job_records(user, queue, settings):
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "ROW_RETENTION_DAYS": 30}
    old = [finished_task(user, days_ago=31), finished_task(user, days_ago=40, status=Task.Status.FAILED)]
    recent = finished_task(user, days_ago=29)
    unfinished = TaskFactory(user=user, status=Task.Status.RUNNING, created_at=timezone.now() - timedelta(days=60))
    owing_cleanup = finished_task(user, days_ago=60, status=Task.Status.CANCELLED, with_job=False)
    Task.objects.filter(pk=owing_cleanup.pk).update(needs_cleanup=True)
    old_file = old[0].file.name

    assert tasks_delete_old() == 2

    assert set(Task.objects.values_list("id", flat=True)) == {recent.id, unfinished.id, owing_cleanup.id}
    assert not default_storage.exists(old_file)
    for task in old:
        assert task_job_state(str(task.id)).phase == "missing"
        if live_settings.QUEUE_BACKEND == "rq":  # nor left in RQ's failed registry
            assert str(task.id) not in queue.failed_job_registry.get_job_ids()
    assert task_job_state(str(recent.id)).phase == "failed"


def test_the_scheduler_prunes_by_itself(user, queue):
    assert "old task pruning" in [entry.name for entry in schedule()]
    old = finished_task(user, days_ago=31)
    with scheduler(child_env(), name="scheduler-prune"):
        deadline = time.monotonic() + 30
        while Task.objects.filter(pk=old.pk).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    assert not Task.objects.filter(pk=old.pk).exists()
    assert task_job_state(str(old.id)).phase == "missing"

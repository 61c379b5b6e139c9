"""The export job, run by a real RQ worker inside the test process (SimpleWorker, no fork)."""

from __future__ import annotations

import gzip
import json
import re

import pytest
from django.core import mail
from rq import SimpleWorker

from exports.services import export_start
from live_tasks.models import Task
from live_tasks.reporter import ProgressReporter
from live_tasks.state import task_mark_running
from tests.factories import PostFactory, TaskFactory

HOSTILE_BODIES = [
    "Hello 👋🏽 world — ünïcödé",
    "שלום עולם (RTL) مرحبا",
    "<script>alert('x')</script> & \"quotes\" \\ backslash",
    "tabs\tand\nnew\r\nlines \u0007 bell \u001f unit-sep",
    "x" * 20_000,
]


def run_queued_jobs(queue) -> None:
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def launch_and_run(user, queue, capture) -> Task:
    with capture(execute=True):
        task = export_start(user=user)
    run_queued_jobs(queue)
    task.refresh_from_db()
    return task


def test_export_writes_every_post_byte_exactly_and_emails_it(user, queue, django_capture_on_commit_callbacks):
    posts = [PostFactory(author=user, body=body) for body in HOSTILE_BODIES]
    PostFactory()  # someone else's post must not leak into this export

    task = launch_and_run(user, queue, django_capture_on_commit_callbacks)

    assert task.status == Task.Status.SUCCEEDED
    assert task.progress == 100
    assert task.error == ""
    assert task.started_at and task.finished_at and task.finished_at >= task.started_at
    assert task.detail == "5 posts exported"
    raw = task.file.open("rb").read()
    data = json.loads(raw.decode("utf-8"))
    assert data["user"] == user.username
    assert data["count"] == 5
    assert [p["id"] for p in data["posts"]] == [p.id for p in posts]
    assert [p["body"] for p in data["posts"]] == HOSTILE_BODIES
    assert all(p["created_at"].startswith(str(posts[0].created_at.year)) for p in data["posts"])

    (message,) = mail.outbox
    assert message.to == [user.email]
    (attachment,) = message.attachments
    assert attachment.filename == f"posts-{user.username}-{task.created_at:%Y-%m-%d}.json.gz"
    assert attachment.mimetype == "application/gzip"
    assert gzip.decompress(attachment.content) == raw
    assert "Your export of 5 posts is ready" in message.body and "times in this email are UTC" in message.body
    assert re.search(r"kept for 7 days, until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", str(message.body)), message.body


def test_user_without_posts_gets_an_empty_valid_export(user, queue, django_capture_on_commit_callbacks):
    task = launch_and_run(user, queue, django_capture_on_commit_callbacks)
    assert task.status == Task.Status.SUCCEEDED
    assert task.progress == 100
    data = json.loads(task.file.open("rb").read())
    assert data["count"] == 0 and data["posts"] == []
    assert task.detail == "0 posts exported"


def test_large_export_is_emailed_as_a_link(user, queue, settings, django_capture_on_commit_callbacks):
    settings.EXPORT_EMAIL_MAX_BYTES = 100
    PostFactory.create_batch(5, author=user)
    task = launch_and_run(user, queue, django_capture_on_commit_callbacks)
    assert task.status == Task.Status.SUCCEEDED
    (message,) = mail.outbox
    assert message.attachments == []
    assert f"{settings.SITE_URL}/tasks/{task.id}/download/" in message.body


def test_progress_is_recorded_in_chunks_and_only_moves_forward(
    user, queue, settings, django_capture_on_commit_callbacks
):
    settings.EXPORT_CHUNK_SIZE = 100
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "PROGRESS_INTERVAL": 0}  # no time throttle: every chunk may report
    PostFactory.create_batch(1000, author=user)
    seen: list[tuple[int, str]] = []
    real_call = ProgressReporter.__call__

    def spy(self, done, total, *, detail):
        real_call(self, done, total, detail=detail)
        row = Task.objects.get(pk=self.task_id)
        seen.append((row.progress, row.detail))

    ProgressReporter.__call__ = spy
    try:
        task = launch_and_run(user, queue, django_capture_on_commit_callbacks)
    finally:
        ProgressReporter.__call__ = real_call

    assert task.status == Task.Status.SUCCEEDED
    assert len(seen) == 10, "one progress call per chunk of rows, never per row"
    progresses = [p for p, _ in seen]
    assert progresses == sorted(progresses) and progresses[-1] == 99
    assert ("1,000 of 1,000 posts") in [d for _, d in seen]
    # queued -> running -> 10 progress writes -> "emailing" -> succeeded
    assert task.seq == 1 + 10 + 1 + 1


def test_progress_writes_are_throttled_by_time(user, monkeypatch):
    task = TaskFactory(user=user)
    task_mark_running(task.id)
    clock = [1000.0]
    monkeypatch.setattr("live_tasks.reporter.time.monotonic", lambda: clock[0])
    report = ProgressReporter(task.id, interval=60)
    for done in range(1, 2501):  # within the first interval: nothing is written
        report(done, 5000, detail=f"{done:,} of 5,000 posts")
    task.refresh_from_db()
    assert task.seq == 1, "a job that ends within the first interval costs no progress write"
    clock[0] += 60
    for done in range(2501, 5001):
        report(done, 5000, detail=f"{done:,} of 5,000 posts")
    task.refresh_from_db()
    assert task.seq == 2, "mark_running plus one progress write: the rest fell within the interval"
    assert (task.progress, task.detail) == (50, "2,501 of 5,000 posts")
    report.say("Emailing 5,000 posts…")
    task.refresh_from_db()
    assert (task.seq, task.progress, task.detail) == (3, 99, "Emailing 5,000 posts…"), "at once, at the latest %"


def test_a_failing_export_is_marked_failed_with_a_short_error(
    user, queue, settings, tmp_path, django_capture_on_commit_callbacks, caplog
):
    # A real storage fault: MEDIA_ROOT is a file, so the export directory cannot be created.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.MEDIA_ROOT = str(blocker)
    settings.LIVE_TASKS = {
        **settings.LIVE_TASKS,
        "RETRY_BACKOFF": 0.01,
    }  # the retries really happen, without seconds of waiting
    PostFactory.create_batch(3, author=user)

    task = launch_and_run(user, queue, django_capture_on_commit_callbacks)

    assert task.status == Task.Status.FAILED
    assert task.error == "The export file could not be stored."
    assert task.finished_at is not None
    assert mail.outbox == []
    logged = [r for r in caplog.records if r.getMessage() == f"Task {task.id} (export_posts) failed"]
    assert logged and logged[0].exc_info, "the traceback is logged"
    job = queue.fetch_job(str(task.id))
    assert job.is_failed, "the job is in RQ's failed registry for operators too"


def test_an_export_cancelled_before_it_starts_is_skipped(user, queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        task = export_start(user=user)
    Task.objects.filter(pk=task.pk).update(status=Task.Status.CANCELLED)
    run_queued_jobs(queue)
    task.refresh_from_db()
    assert task.status == Task.Status.CANCELLED
    assert not task.file
    assert mail.outbox == []


@pytest.mark.parametrize("chunk_size", [1, 7, 5000])
def test_file_is_valid_json_for_any_chunk_size(user, queue, settings, chunk_size, django_capture_on_commit_callbacks):
    settings.EXPORT_CHUNK_SIZE = chunk_size
    PostFactory.create_batch(20, author=user)
    task = launch_and_run(user, queue, django_capture_on_commit_callbacks)
    data = json.loads(task.file.open("rb").read())
    assert data["count"] == 20 == len(data["posts"])

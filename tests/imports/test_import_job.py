"""The import job, run by a real RQ worker in the test process: all or nothing, idempotent, and
its upload deleted whatever happens."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import UTC, datetime, timedelta

import pytest
from rq import SimpleWorker

import posts.services
from imports.services import import_start
from live_tasks.files import input_path, work_dir
from live_tasks.models import Task
from live_tasks.state import task_mark_cancelled
from posts.models import PendingBatch, Post
from tests.factories import PostFactory, UserFactory

T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def export_file(tmp_path, posts, *, compress=False, name="posts.json"):
    data = json.dumps({"user": "someone", "count": len(posts), "posts": posts}).encode()
    path = work_dir() / f"test-upload-{tmp_path.name}-{name}"
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def numbered(count, start=0):
    return [
        {"id": i, "body": f"Post {i} ✓", "created_at": (T0 + timedelta(seconds=i)).isoformat()}
        for i in range(start, start + count)
    ]


def run_import(user, path, queue, capture) -> Task:
    with capture(execute=True):
        task = import_start(user=user, upload=path, file_name=path.name)
    assert not path.exists(), "the upload now belongs to the task"
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    task.refresh_from_db()
    return task


@pytest.fixture
def run(queue, django_capture_on_commit_callbacks):
    return lambda user, path: run_import(user, path, queue, django_capture_on_commit_callbacks)


def test_an_import_adds_every_post_with_its_date_and_says_how_many(db, run, tmp_path, settings):
    settings.IMPORT_BATCH_SIZE = 7  # several short transactions
    user = UserFactory()
    task = run(user, export_file(tmp_path, numbered(20), compress=True))

    assert (task.status, task.progress, task.detail) == ("succeeded", 100, "Imported 20 posts.")
    imported = list(Post.objects.by_author(user).order_by("created_at").values_list("body", "created_at"))
    assert imported == [(f"Post {i} ✓", T0 + timedelta(seconds=i)) for i in range(20)]
    assert not input_path(task.id).exists(), "the upload is deleted when the task ends"
    assert not PendingBatch.objects.exists()


def test_importing_the_same_file_twice_adds_nothing_the_second_time(db, run, tmp_path):
    user = UserFactory()
    PostFactory(author=user, body="Post 3 ✓", created_at=T0 + timedelta(seconds=3))  # already there
    first = run(user, export_file(tmp_path, numbered(10), name="a.json"))
    second = run(user, export_file(tmp_path, numbered(10), name="b.json"))

    assert first.detail == "Imported 9 posts; skipped 1 already present."
    assert second.detail == "Imported 0 posts; skipped 10 already present."
    assert Post.objects.by_author(user).count() == 10


def test_a_repeat_inside_the_file_is_skipped_and_counted(db, run, tmp_path, settings):
    settings.IMPORT_BATCH_SIZE = 3  # the repeats fall in different batches
    user = UserFactory()
    posts_ = numbered(5)
    task = run(user, export_file(tmp_path, posts_ + [posts_[0], posts_[4]] + posts_[1:2]))
    assert task.detail == "Imported 5 posts; skipped 3 already present."
    assert Post.objects.by_author(user).count() == 5


def test_another_users_posts_do_not_count_as_present(db, run, tmp_path):
    other = UserFactory()
    PostFactory(author=other, body="Post 0 ✓", created_at=T0)
    user = UserFactory()
    assert run(user, export_file(tmp_path, numbered(1))).detail == "Imported 1 post."


def test_a_bad_post_after_many_batches_fails_the_import_and_adds_nothing(db, run, tmp_path, settings):
    settings.IMPORT_BATCH_SIZE = 10
    user = UserFactory()
    PostFactory(author=user, body="kept")
    bad = [*numbered(1202), {"body": "x", "created_at": "yesterday"}, *numbered(50, start=2000)]

    task = run(user, export_file(tmp_path, bad))

    assert task.status == "failed"
    assert task.error == 'Post 1,203: "created_at" is not a date (got "yesterday"). Nothing was imported.'
    assert list(Post.all_objects.filter(author=user).values_list("body", flat=True)) == ["kept"], (
        "the 1,202 staged posts are gone"
    )
    assert not PendingBatch.objects.exists() and not task.needs_cleanup
    assert not input_path(task.id).exists()


def test_a_number_too_long_to_read_is_the_users_error_not_an_operators(db, run, tmp_path, queue, settings):
    # More than Python's 4,300 digits for int(): ijson's C backend used to fail on it with a
    # SystemError, so the task failed "unexpectedly" and the job landed in RQ's failed registry.
    settings.IMPORT_BATCH_SIZE = 10
    user = UserFactory()
    path = export_file(tmp_path, [*numbered(30), {**numbered(1, start=30)[0], "id": 0}])
    path.write_bytes(path.read_bytes().replace(b'"id": 0,', b'"id": ' + b"7" * 5000 + b","))

    task = run(user, path)

    assert task.status == "failed"
    assert task.error.startswith("The file has a number too large to read (")
    assert task.error.endswith("; numbers must fit in 64 bits. Nothing was imported.")
    assert not Post.all_objects.filter(author=user).exists(), "the 30 staged posts are gone"
    assert queue.failed_job_registry.get_job_ids() == [], "a refused file is no failure for operators"


def test_staged_posts_stay_invisible_until_the_end_and_a_cancel_removes_them(
    db, queue, tmp_path, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.IMPORT_BATCH_SIZE = 10
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "PROGRESS_INTERVAL": 0}
    user = UserFactory()
    seen = []
    real_stage = posts.services.posts_stage

    def stage_then_look(**kwargs):
        added = real_stage(**kwargs)
        seen.append((Post.objects.by_author(user).count(), Post.all_objects.filter(author=user).count()))
        if len(seen) == 3:
            task_mark_cancelled(kwargs["batch_id"], detail="Cancelled. No posts were added.")  # mid-import
        return added

    monkeypatch.setattr("imports.services.posts_stage", stage_then_look)
    task = run_import(user, export_file(tmp_path, numbered(100)), queue, django_capture_on_commit_callbacks)

    assert seen == [(0, 10), (0, 20), (0, 30)], "visible: none; staged: growing"
    assert task.status == "cancelled" and task.detail == "Cancelled. No posts were added."
    assert Post.all_objects.filter(author=user).count() == 0
    assert not PendingBatch.objects.exists() and not input_path(task.id).exists()


def test_an_upload_is_never_left_behind_when_the_queue_refuses(
    db, tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    from redis.exceptions import ConnectionError as RedisConnectionError

    from live_tasks.services import QueueUnavailable

    def refuse(*args, **kwargs):
        raise RedisConnectionError("down")

    monkeypatch.setattr("live_tasks.services.task_job_enqueue", refuse)
    path = export_file(tmp_path, numbered(2))
    before = set(work_dir().iterdir())
    with pytest.raises(QueueUnavailable), django_capture_on_commit_callbacks(execute=True):
        import_start(user=UserFactory(), upload=path, file_name="x.json")
    assert not Task.objects.exists()
    assert set(work_dir().iterdir()) == before - {path}, "no upload and no task input left"


def test_an_import_file_is_read_back_from_a_real_export(db, run, tmp_path, queue, django_capture_on_commit_callbacks):
    from exports.services import export_start

    alice, bob = UserFactory(), UserFactory()
    bodies = ["Grüße 🌍", '<b>bold</b> & "quoted"', "line\r\nbreak\ttab", "שלום", "😀" * 500]
    for body in bodies:
        PostFactory(author=alice, body=body)
    with django_capture_on_commit_callbacks(execute=True):
        exported = export_start(user=alice)
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    exported.refresh_from_db()
    upload = work_dir() / f"roundtrip-{tmp_path.name}.json"
    with exported.file.open("rb") as source, open(upload, "wb") as target:
        shutil.copyfileobj(source, target)

    assert run(bob, upload).detail == "Imported 5 posts."
    assert set(Post.objects.by_author(bob).values_list("body", "created_at")) == set(
        Post.objects.by_author(alice).values_list("body", "created_at")
    )


def test_a_relaunch_ends_a_lost_import_at_once_and_leaves_its_cleanup_to_the_safety_net(
    db, queue, tmp_path, django_capture_on_commit_callbacks
):
    """The old import's staged posts (a million, perhaps) are deleted by the scheduler's pass, not
    inside the request that found its worker gone."""
    from live_tasks.reconcile import tasks_reconcile

    user = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        lost = import_start(user=user, upload=export_file(tmp_path, numbered(1), name="a.json"), file_name="a.json")
    # Its worker died mid-import: the task is running, posts staged, and RQ has no job any more.
    posts.services.posts_batch_open(author=user, batch_id=lost.id)
    staged = [(post["body"], datetime.fromisoformat(post["created_at"])) for post in numbered(50)]
    posts.services.posts_stage(author=user, batch_id=lost.id, posts=staged)
    Task.objects.filter(pk=lost.pk).update(status=Task.Status.RUNNING)
    queue.connection.delete(f"rq:job:{lost.id}")

    with django_capture_on_commit_callbacks(execute=True):
        relaunched = import_start(user=user, upload=export_file(tmp_path, numbered(1), name="b.json"), file_name="b")

    lost.refresh_from_db()
    assert relaunched.status == Task.Status.QUEUED, "the lost import no longer blocks a new one"
    assert lost.status == Task.Status.FAILED and lost.needs_cleanup, "ended, its cleanup still owed"
    assert Post.all_objects.filter(batch_id=lost.id).count() == 50, "the relaunch did not discard them"
    assert not Post.objects.by_author(user).exists(), "and they stay hidden"

    assert tasks_reconcile() == {"cleaned up": 1}  # the scheduler's next pass

    lost.refresh_from_db()
    assert not lost.needs_cleanup
    assert not Post.all_objects.filter(batch_id=lost.id).exists()


def test_a_job_that_outlives_its_task_stages_nothing_visible_after_the_safety_net_discarded_it(
    db, queue, tmp_path, settings, monkeypatch, django_capture_on_commit_callbacks
):
    # An orphaned work horse: the safety net has failed its task and discarded its batch, and the
    # horse has not yet read the row again (its progress writes are throttled, here never due).
    from live_tasks.cleanup import task_cleanup
    from live_tasks.errors import worker_lost_error
    from live_tasks.state import task_mark_failed

    settings.IMPORT_BATCH_SIZE = 10
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "PROGRESS_INTERVAL": 3600}
    user = UserFactory()
    PostFactory(author=user, body="mine before")
    visible: list[int] = []
    attempts: list[int] = []
    real_stage = posts.services.posts_stage

    def stage_then_look(**kwargs):
        attempts.append(len(attempts) + 1)
        try:
            return real_stage(**kwargs)
        finally:
            visible.append(Post.objects.by_author(user).count())
            if len(attempts) == 3:  # the safety net's pass, between two batches of the job
                assert task_mark_failed(kwargs["batch_id"], error=worker_lost_error("Posts import"))
                assert task_cleanup(kwargs["batch_id"])

    monkeypatch.setattr("imports.services.posts_stage", stage_then_look)
    task = run_import(user, export_file(tmp_path, numbered(100)), queue, django_capture_on_commit_callbacks)

    assert visible == [1, 1, 1, 1], "no imported post was ever visible"
    assert attempts == [1, 2, 3, 4], "the job stopped at its first batch after the discard"
    assert (task.status, task.error) == ("failed", worker_lost_error("Posts import")), "as the safety net left it"
    assert list(Post.all_objects.filter(author=user).values_list("body", flat=True)) == ["mine before"]
    assert not PendingBatch.objects.exists() and not input_path(task.id).exists()

"""Pending batches (posts/models.py): a post staged into a batch is visible only if the batch is
revealed; a discard that has begun takes no more posts, and a stage in flight is never missed."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.models.signals import pre_delete

from posts.models import PendingBatch, Post
from posts.services import (
    BatchNotPending,
    posts_batch_delete,
    posts_batch_open,
    posts_batch_reveal,
    posts_seed,
    posts_stage,
)
from tests.factories import UserFactory

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def some_posts(count: int, start: int = 0) -> list[tuple[str, datetime]]:
    return [(f"Staged {i}", T0) for i in range(start, start + count)]


def test_a_stage_skips_what_the_author_has_or_this_batch_has_and_nothing_else(db):
    """Present: the author's visible posts, a revealed batch's, this batch's own. Not present: the
    same post of another author, or in another batch still pending (it may yet be discarded)."""
    user, other = UserFactory(), UserFactory()
    Post.objects.create(author=user, body="Visible", created_at=T0)
    Post.objects.create(author=other, body="Another author's", created_at=T0)
    revealed, pending, batch = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for staged in (revealed, pending, batch):
        posts_batch_open(author=user, batch_id=staged)
    posts_stage(author=user, batch_id=revealed, posts=[("Revealed", T0)])
    posts_batch_reveal(batch_id=revealed)
    posts_stage(author=user, batch_id=pending, posts=[("Pending elsewhere", T0)])
    posts_stage(author=user, batch_id=batch, posts=[("Staged here", T0)])

    candidates = ["Visible", "Revealed", "Staged here", "Another author's", "Pending elsewhere", "New"]
    added = posts_stage(author=user, batch_id=batch, posts=[(body, T0) for body in candidates])
    assert added == 3
    bodies = Post.all_objects.filter(batch_id=batch).values_list("body", flat=True)
    assert sorted(bodies) == ["Another author's", "New", "Pending elsewhere", "Staged here"]
    # The same body at another date is another post.
    assert posts_stage(author=user, batch_id=batch, posts=[("Visible", datetime(2024, 1, 2, tzinfo=UTC))]) == 1


def test_a_stage_probes_each_post_without_reading_the_authors_other_posts(db):
    """PostgreSQL: planned from statistics taken when the author had no posts, the probe for a
    post already present must still be one look-up of (author, fingerprint), not a read of every
    post the author has since gained (an import of a million posts would slow to a crawl)."""
    if connection.vendor != "postgresql":
        pytest.skip("the plan of PostgreSQL's staging statement; SQLite stages through the ORM")
    user, batch = UserFactory(), uuid.uuid4()
    posts_seed(author=UserFactory(), count=20_000)  # a table of other people's posts
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE posts_post")  # the statistics now say this author has no posts
    posts_seed(author=user, count=3000)
    posts_batch_open(author=user, batch_id=batch)

    assert posts_stage(author=user, batch_id=batch, posts=some_posts(500)) == 500
    with connection.cursor() as cursor:  # this transaction's reads so far
        cursor.execute("SELECT idx_tup_fetch FROM pg_stat_xact_user_tables WHERE relname = 'posts_post'")
        (fetched,) = cursor.fetchone()
    assert fetched < 500 * 10, f"{fetched:,} rows read through an index to stage 500 new posts"


def test_staging_no_posts_adds_nothing_and_still_refuses_a_batch_that_is_gone(db):
    user, batch = UserFactory(), uuid.uuid4()
    posts_batch_open(author=user, batch_id=batch)
    assert posts_stage(author=user, batch_id=batch, posts=[]) == 0
    posts_batch_delete(batch_id=batch)
    with pytest.raises(BatchNotPending):
        posts_stage(author=user, batch_id=batch, posts=[])


def test_staging_into_a_batch_that_is_gone_adds_nothing(db):
    user, batch = UserFactory(), uuid.uuid4()
    posts_batch_open(author=user, batch_id=batch)
    assert posts_stage(author=user, batch_id=batch, posts=some_posts(3)) == 3
    posts_batch_delete(batch_id=batch)

    with pytest.raises(BatchNotPending):
        posts_stage(author=user, batch_id=batch, posts=some_posts(3, start=3))
    with pytest.raises(BatchNotPending):
        posts_stage(author=user, batch_id=uuid.uuid4(), posts=some_posts(1))  # never opened
    assert not Post.all_objects.filter(author=user).exists()


def test_a_discard_that_has_begun_takes_no_more_posts_and_is_never_revealed(db):
    # A late writer between the discard's last delete of posts and its delete of the batch's
    # row: what it added would be missed by the discard, and visible once the row is gone.
    user, batch = UserFactory(), uuid.uuid4()
    posts_batch_open(author=user, batch_id=batch)
    posts_stage(author=user, batch_id=batch, posts=some_posts(3))
    late = []

    def late_writer(sender, instance, **kwargs):
        for attempt in (
            lambda: posts_stage(author=user, batch_id=batch, posts=some_posts(2, start=3)),
            lambda: posts_batch_reveal(batch_id=batch),
        ):
            try:
                attempt()
                late.append("done")
            except BatchNotPending:
                late.append("refused")

    pre_delete.connect(late_writer, sender=PendingBatch)
    try:
        posts_batch_delete(batch_id=batch)
    finally:
        pre_delete.disconnect(late_writer, sender=PendingBatch)

    assert late == ["refused", "refused"]
    assert not Post.all_objects.filter(author=user).exists() and not PendingBatch.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_discard_waits_for_a_stage_in_flight_and_deletes_its_posts_too(monkeypatch):
    # Two processes in real life (the safety net and an orphaned work horse), two connections
    # here. Without the stage's lock on the batch's row (PostgreSQL), the discard would delete
    # what was committed, then the row, and the stage's posts would commit after it: visible.
    user, batch = UserFactory(), uuid.uuid4()
    posts_batch_open(author=user, batch_id=batch)
    inserted, discard_began = threading.Event(), threading.Event()
    real_bulk_create = Post.all_objects.bulk_create

    def bulk_create_then_linger(rows, *args, **kwargs):
        created = real_bulk_create(rows, *args, **kwargs)
        inserted.set()
        discard_began.wait(10)
        threading.Event().wait(0.5)  # the discard, unless it waits for this commit, runs meanwhile
        return created

    def in_thread(work):
        def run():
            try:
                work()
            except BaseException as exc:  # noqa: BLE001 -- reported by the test below
                errors.append(exc)
            finally:
                connection.close()

        return threading.Thread(target=run)

    def discard():
        inserted.wait(10)
        discard_began.set()
        posts_batch_delete(batch_id=batch)

    errors: list[BaseException] = []
    monkeypatch.setattr(Post.all_objects, "bulk_create", bulk_create_then_linger)
    threads = [
        in_thread(lambda: posts_stage(author=user, batch_id=batch, posts=some_posts(5))),
        in_thread(discard),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert Post.objects.by_author(user).count() == 0, "nothing of the discarded batch is visible"
    assert not Post.all_objects.filter(author=user).exists() and not PendingBatch.objects.exists()

"""Writing posts: one at a time from the page, many at once for demos, or a batch all or nothing."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg import pq
from psycopg.abc import DumperKey
from psycopg.abc import Transformer as AbcTransformer
from psycopg.adapt import Dumper, PyFormat, Transformer
from redis.exceptions import RedisError

from live_tasks.ratelimits import Limit, RateLimited

from .models import PendingBatch, Post, post_fingerprint, post_fingerprints_at

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

SEED_BATCH_SIZE = 5000


class PostingTooFast(RateLimited):
    """More posts from the page than POST_CREATE_LIMIT in the window."""


def post_submit(*, author: User, body: str) -> Post:
    """A post written on the posts page: counted against the author's limit first.

    Raises PostingTooFast past POST_CREATE_LIMIT posts per POST_CREATE_WINDOW_SECONDS. Bulk
    paths (imports, seeding) call post_create or posts_seed and are not counted here.
    """
    limit = Limit("post-create", settings.POST_CREATE_LIMIT, settings.POST_CREATE_WINDOW_SECONDS)
    try:
        retry_after = limit.hit(author.pk)
    except RedisError as exc:
        # Writing a post needs only the database: a Redis outage must not stop it.
        logger.warning("Post limit not checked (Redis unavailable: %r)", exc)
        retry_after = None
    if retry_after is not None:
        raise PostingTooFast(
            f"You are posting too fast. Please wait {retry_after} s before posting again.", retry_after=retry_after
        )
    return post_create(author=author, body=body)


def post_create(*, author: User, body: str) -> Post:
    return Post.objects.create(author=author, body=body)


def post_update(*, post: Post, body: str) -> Post:
    """A new body; the post keeps its date (and gets a new fingerprint: an import compares both)."""
    post.body = body
    post.save(update_fields=["body", "fingerprint"])
    return post


def post_delete(*, post: Post) -> None:
    post.delete()


def posts_seed(*, author: User, count: int, on_batch: Callable[[int], object] | None = None) -> int:
    """Bulk-insert `count` numbered demo posts for `author`, one transaction per batch.

    The rows go in as plain tuples through one executemany per batch, not Model.bulk_create:
    building and compiling a model per row costs about 60 µs, two thirds of the time, and the demo
    user's 300,000 posts (accounts/management/commands/ensure_demo.py) must not slow `make run`.
    """
    now = timezone.now()
    created_at = connection.ops.adapt_datetimefield_value(now)
    table = connection.ops.quote_name(Post._meta.db_table)
    # The columns a post needs; batch_id stays NULL (visible), as Post.objects.create leaves it.
    sql = f"INSERT INTO {table} (author_id, body, created_at, fingerprint) VALUES (%s, %s, %s, %s)"  # noqa: S608 -- our own table
    created = 0
    while created < count:
        batch = min(SEED_BATCH_SIZE, count - created)
        bodies = [f"Demo post {number} ✓" for number in range(created + 1, created + batch + 1)]
        fingerprints = post_fingerprints_at(bodies, now)
        rows = [(author.pk, body, created_at, fp) for body, fp in zip(bodies, fingerprints, strict=True)]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, rows)
        created += batch
        if on_batch:
            on_batch(batch)
    return created


# --- Writing many posts all or nothing (see posts/models.py) ---------------------------------
DISCARD_BATCH_SIZE = 5000


class BatchNotPending(Exception):
    """The batch was revealed, discarded, or is being discarded: nothing may be added to it now."""


@dataclass(frozen=True, slots=True)
class NewPosts:
    """Posts ready for posts_stage: repeats among them removed, each fingerprinted."""

    posts: list[tuple[str, datetime]]  # (body, created_at)
    fingerprints: list[int]
    # PostgreSQL: bodies, dates and fingerprints as the statement's binary array parameters.
    arrays: tuple[_BinaryArray, _BinaryArray, _BinaryArray] | None = None


def posts_prepare(posts: Iterable[tuple[str, datetime]]) -> NewPosts:
    """The half of posts_stage that needs no database connection, which an importer may run
    ahead in another thread: the repeats removed, the fingerprints, on PostgreSQL the arrays."""
    unique = list(dict.fromkeys(posts))  # a repeat among these posts is one post
    fingerprints = [post_fingerprint(body, created_at) for body, created_at in unique]
    if not unique or connection.vendor != "postgresql":
        return NewPosts(unique, fingerprints)  # (psycopg dumps an empty list as text, not binary)
    transformer = Transformer(psycopg.adapters)
    bodies, dates = [body for body, _ in unique], [created_at for _, created_at in unique]
    arrays = (
        _BinaryArray(transformer, bodies),
        _BinaryArray(transformer, dates),
        _BinaryArray(transformer, fingerprints),
    )
    return NewPosts(unique, fingerprints, arrays)


class _BinaryArray:
    """A list already dumped into PostgreSQL's binary array format: 2 ms of Python for a batch of
    2,000 posts, which the thread that writes need not spend (_BinaryArrayDumper sends it)."""

    __slots__ = ("data", "oid")
    data: bytes
    oid: int

    def __init__(self, transformer: AbcTransformer, values: list[Any]) -> None:
        dumper = transformer.get_dumper(values, PyFormat.BINARY)
        self.data, self.oid = bytes(dumper.dump(values) or b""), dumper.oid


class _BinaryArrayDumper(Dumper):
    format = pq.Format.BINARY

    def get_key(self, obj: _BinaryArray, format: PyFormat) -> DumperKey:
        # One dumper per array type, as psycopg's own list dumpers (any hashable key will do).
        return cast("DumperKey", (type(obj), obj.oid))

    def upgrade(self, obj: _BinaryArray, format: PyFormat) -> Dumper:
        dumper = type(self)(type(obj))
        dumper.oid = obj.oid
        return dumper

    def dump(self, obj: _BinaryArray) -> bytes | None:
        return obj.data


def posts_stage(*, author: User, batch_id: uuid.UUID, posts: Iterable[tuple[str, datetime]] | NewPosts) -> int:
    """Add `posts` (body, created_at) to a pending batch, hidden, in one short transaction.

    A post whose body and created_at equal one the author already has (or one already staged in
    this batch) is skipped. Returns how many were added. Raises BatchNotPending, adding nothing,
    once the batch is gone or being discarded (see posts/models.py). `author` is the batch's, as
    posts_batch_open recorded it (on PostgreSQL the statement reads it from the batch's row).
    """
    new = posts if isinstance(posts, NewPosts) else posts_prepare(posts)
    if connection.vendor == "postgresql":
        with transaction.atomic():
            return _posts_stage_postgresql(batch=batch_id, new=new)
    present = set(
        Post.all_objects.by_author(author)
        .visible_or_in_batch(batch_id)
        .filter(fingerprint__in=set(new.fingerprints))
        .order_by()  # no ORDER BY id: it would steer the planner off the fingerprint index
        .values_list("body", "created_at")
    )
    rows = [
        Post(author=author, body=body, created_at=created_at, fingerprint=fingerprint, batch_id=batch_id)
        for (body, created_at), fingerprint in zip(new.posts, new.fingerprints, strict=True)
        if (body, created_at) not in present
    ]
    with transaction.atomic():
        _batch_lock(batch_id)
        Post.all_objects.bulk_create(rows)
    return len(rows)


def _batch_lock(batch_id: uuid.UUID) -> None:
    """Lock the batch's row until the caller's transaction commits, or raise BatchNotPending.

    A discard marks the row first, so it waits for this transaction (and then deletes its posts
    too), or this one sees the mark and adds nothing. PostgreSQL: FOR UPDATE (posts_stage takes it
    inside its one statement instead). SQLite ignores FOR UPDATE, but every transaction here is
    BEGIN IMMEDIATE (project/settings.py), which takes the database's one write lock before this
    read: the discard's mark cannot come in between either.
    """
    if not PendingBatch.objects.select_for_update().filter(pk=batch_id, discarding=False).exists():
        raise BatchNotPending(batch_id)


def _posts_stage_postgresql(*, batch: uuid.UUID, new: NewPosts) -> int:
    """posts_stage on PostgreSQL: the batch's lock and one INSERT of the posts, sent as arrays,
    each post checked against the author's as it goes in; one round trip before the commit.

    Runs in the caller's transaction. The lock is _batch_lock's, taken by the statement itself.
    The check is one probe of the (author, fingerprint) index per post, whatever the statistics
    say. They describe the author before the import, which it outgrows as it runs (its staged
    rows count too), and a plan chosen from them reads every post of the author for each batch
    or each post: planned as a join (`fingerprint IN (...)`, an anti-join), or, for an author the
    statistics show without posts, a probe of the author-only index with the fingerprint as a
    filter. So the probe is a subplan run per row (OFFSET 0 keeps it one), and the author it
    compares with is the locked batch row's, unknown when the statement is planned.
    """
    table, batches = Post._meta.db_table, PendingBatch._meta.db_table
    sql = f"""
        WITH batch AS (
            SELECT id, author_id FROM {batches} WHERE id = %(batch)s AND NOT discarding FOR UPDATE
        ), added AS (
            INSERT INTO {table} (author_id, body, created_at, fingerprint, batch_id)
            SELECT batch.author_id, new.body, new.created_at, new.fingerprint, batch.id
            FROM batch, unnest(%(bodies)b::text[], %(dates)b::timestamptz[], %(fingerprints)b::bigint[])
                AS new(body, created_at, fingerprint)
            WHERE NOT EXISTS (
                SELECT 1 FROM {table} AS p
                WHERE p.author_id = batch.author_id AND p.fingerprint = new.fingerprint
                    AND p.body = new.body AND p.created_at = new.created_at
                    AND (p.batch_id IS NULL OR p.batch_id = batch.id
                         OR NOT EXISTS (SELECT 1 FROM {batches} AS b WHERE b.id = p.batch_id))
                OFFSET 0
            )
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM batch), (SELECT count(*) FROM added)
    """  # noqa: S608 -- our own tables
    bodies, dates, fingerprints = new.arrays or ([], [], [])  # none: no posts to add
    params: dict[str, Any] = {"batch": batch, "bodies": bodies, "dates": dates, "fingerprints": fingerprints}
    # psycopg's own cursor, on Django's connection and in its transaction: bound on the server and
    # sent in binary (%b), the arrays are not quoted into the SQL text as by Django's client-side
    # cursor, nor is a model built and compiled per row as by bulk_create. Pipelined: the
    # transaction's BEGIN, the settings and the statement go in one round trip.
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.adapters.register_dumper(_BinaryArray, _BinaryArrayDumper)
        with cursor.connection.pipeline():
            # The plan's cost is estimated high (a subplan per row of an array of unknown length),
            # past jit_above_cost: compiling it would take longer (~145 ms) than running it (~20
            # ms). And the statistics make a bitmap scan look cheaper than an index scan for each
            # probe, which it is not (a third slower).
            cursor.execute("SET LOCAL jit = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
            cursor.execute(sql, params)
        locked, added = cursor.fetchone() or (0, 0)
    if not locked:
        raise BatchNotPending(batch)
    return int(added)


def posts_batch_open(*, author: User, batch_id: uuid.UUID) -> None:
    PendingBatch.objects.get_or_create(id=batch_id, defaults={"author": author})


def posts_batch_reveal(*, batch_id: uuid.UUID) -> None:
    """Make every post of the batch visible at once: one small write.

    Raises BatchNotPending if the batch is gone or being discarded: what its discard has not yet
    deleted must never be revealed, and a caller that reveals inside a transaction (an import's
    success) is rolled back rather than report posts that are not there.
    """
    if not PendingBatch.objects.filter(pk=batch_id, discarding=False).delete()[0]:
        raise BatchNotPending(batch_id)


def posts_batch_delete(*, batch_id: uuid.UUID) -> None:
    """Mark a pending batch `discarding`, delete its posts a few thousand per transaction, then the batch.

    Does nothing to a batch that was revealed. The mark comes first and commits on its own, so no
    writer can add a post after this has begun (posts_stage). If interrupted, what is left stays
    hidden and a second call finishes the job.
    """
    if not PendingBatch.objects.filter(pk=batch_id).update(discarding=True):
        return
    staged = Post.all_objects.filter(batch_id=batch_id).order_by().values_list("id", flat=True)
    while ids := list(staged[:DISCARD_BATCH_SIZE]):
        Post.all_objects.filter(id__in=ids).delete()
    PendingBatch.objects.filter(pk=batch_id).delete()

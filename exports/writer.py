"""Streams a user's posts into a JSON document, in chunks, so memory stays flat at any size."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, Protocol

import orjson
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Case, Count, Exists, OuterRef, Subquery, Value, When
from django.utils import timezone

from posts.models import PendingBatch, Post, PostQuerySet

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class BytesSink(Protocol):
    """Where the document goes: a file, or live_tasks.files.result_writer's upload."""

    def write(self, data: bytes, /) -> int | None: ...


def write_posts_json(
    *,
    author: User,
    out: BytesSink,
    chunk_size: int,
    on_progress: Callable[[int, int], None],
) -> int:
    """Write `{"user", "exported_at", "posts": [...], "count"}` to `out`; return the post count.

    Written in order, never sought back (`out` may be an upload to a bucket): the count comes last,
    being known exactly only after the posts (some may be deleted while the export runs). Posts are
    read as plain tuples (no model instances) in id order, `chunk_size` rows per database round
    trip; each chunk is serialised by orjson in one call.
    """
    posts = Post.objects.by_author(author)
    # Posts written after the export started are left for the next export.
    total, last_id = _visible_bounds(author)
    chunks = _chunks_by_id(posts.filter(id__lte=last_id or 0), chunk_size)

    header = orjson.dumps({"user": author.get_username(), "exported_at": timezone.now()})
    out.write(header[:-1] + b',"posts":[')

    written = 0
    for chunk in chunks:
        encoded = orjson.dumps([{"id": pk, "body": body, "created_at": created} for pk, body, created in chunk])
        if written:
            out.write(b",")
        out.write(encoded[1:-1])  # the chunk's items without its own brackets
        written += len(chunk)
        on_progress(written, total)
    out.write(b'],"count":%d}\n' % written)
    return written


def _visible_bounds(author: User) -> tuple[int, int | None]:
    """How many of the author's posts are visible, and the id of the newest: one statement, one snapshot.

    Not one aggregate over the visible posts: the visibility test needs each post's batch_id,
    which no index on the author holds, so SQLite read every row of the table for it (1.7 s of an
    8 s export of 1,000,000 posts on SQLite, docs/performance.md). Visible = all the author's
    posts (counted from the author's index alone) minus those in a pending batch, counted only
    while there is one (an import staging); the newest visible post is the first visible one
    going down the (author, id) index.
    """
    mine = Post.all_objects.filter(author=OuterRef("pk")).order_by().values("author")
    hidden = mine.filter(batch_id__in=PendingBatch.objects.values("id")).annotate(n=Count("id")).values("n")
    newest = Post.objects.filter(author=OuterRef("pk")).order_by("-id").values("id")[:1]
    everything, pending, last_id = (
        get_user_model()
        .objects.filter(pk=author.pk)
        .values_list(
            Subquery(mine.annotate(n=Count("id")).values("n")),
            # CASE runs the count only if its condition holds: a scan of the author's rows again.
            Case(When(Exists(PendingBatch.objects.all()), then=Subquery(hidden)), default=Value(0)),
            Subquery(newest),
        )
        .get()
    )
    return (everything or 0) - (pending or 0), last_id


def _chunks_by_id(posts: PostQuerySet, chunk_size: int) -> Iterator[list[tuple[int, str, datetime]]]:
    """(id, body, created_at) rows in id order, `chunk_size` at a time, in constant memory."""
    rows = posts.order_by("id").values_list("id", "body", "created_at")
    if connection.vendor != "sqlite":
        # PostgreSQL: one query through a server-side cursor, fetched chunk by chunk.
        stream = rows.iterator(chunk_size=chunk_size)
        while chunk := list(islice(stream, chunk_size)):
            yield chunk
        return
    # SQLite: one query per chunk (keyset pagination on the author+id index). A statement left
    # open across chunks would make the progress UPDATEs between them fail at once with
    # "database is locked" (SQLITE_BUSY_SNAPSHOT) as soon as another process writes.
    last_id = 0
    while chunk := list(rows.filter(id__gt=last_id)[:chunk_size]):
        yield chunk
        if len(chunk) < chunk_size:
            return  # that was the last chunk: no need to ask for an empty one
        last_id = chunk[-1][0]

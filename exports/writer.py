"""Streams a user's posts into a JSON document, in chunks, so memory stays flat at any size."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, Protocol

import orjson
from django.db import connection
from django.db.models import Count, Max
from django.utils import timezone

from posts.models import Post, PostQuerySet

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
    bounds = posts.aggregate(total=Count("id"), last_id=Max("id"))
    total = bounds["total"]
    chunks = _chunks_by_id(posts.filter(id__lte=bounds["last_id"] or 0), chunk_size)

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

"""The export writer streams: memory does not grow with the number of posts."""

from __future__ import annotations

import json
import tracemalloc
import uuid

from django.db import connection
from django.utils import timezone

from exports.writer import _visible_bounds, write_posts_json
from posts.models import Post
from posts.services import posts_batch_open, posts_batch_reveal, posts_seed, posts_stage
from tests.factories import UserFactory


def export_with_peak_memory(author, path) -> tuple[int, dict, list[int]]:
    """Write `author`'s export to a file on disk; return Python's peak memory meanwhile."""
    open_cursors: list[int] = []

    def on_progress(done: int, total: int) -> None:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:  # cursors held by this same session, mid-stream
                cursor.execute("SELECT count(*) FROM pg_cursors WHERE name LIKE '_django_curs_%%'")
                open_cursors.append(cursor.fetchone()[0])

    with open(path, "wb") as out:
        tracemalloc.start()
        try:
            write_posts_json(author=author, out=out, chunk_size=500, on_progress=on_progress)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return peak, json.loads(path.read_bytes()), open_cursors


def test_memory_stays_flat_as_the_export_grows(user, other_user, tmp_path):
    posts_seed(author=user, count=2_000)
    posts_seed(author=other_user, count=40_000)

    small_peak, small, _ = export_with_peak_memory(user, tmp_path / "small.json")
    large_peak, large, open_cursors = export_with_peak_memory(other_user, tmp_path / "large.json")

    assert small["count"] == 2_000 == len(small["posts"])
    assert large["count"] == 40_000 == len(large["posts"])
    # 20x the posts; building the whole list first would need ~20x the memory (tens of MiB).
    assert large_peak < small_peak * 1.5 + 1_000_000, (small_peak, large_peak)
    if connection.vendor == "postgresql":
        assert open_cursors and min(open_cursors) >= 1, "rows come through a server-side cursor"
    else:
        assert connection.vendor == "sqlite" and open_cursors == []


def test_posts_in_a_pending_batch_are_neither_counted_nor_written(user, other_user, tmp_path):
    # The writer's bounds count the hidden posts apart (exports/writer.py: _visible_bounds).
    posts_seed(author=user, count=3)
    assert _visible_bounds(user) == (3, Post.objects.by_author(user).latest("id").id)
    batch = uuid.uuid4()
    posts_batch_open(author=user, batch_id=batch)
    staged = [(f"Staged {n}", timezone.now()) for n in range(2)]
    assert posts_stage(author=user, batch_id=batch, posts=staged) == 2  # the newest, hidden
    posts_seed(author=other_user, count=4)
    newest_visible = Post.objects.by_author(user).latest("id").id
    assert _visible_bounds(user) == (3, newest_visible)
    _, document, _ = export_with_peak_memory(user, tmp_path / "export.json")
    assert document["count"] == 3 and not any(post["body"].startswith("Staged") for post in document["posts"])
    posts_batch_reveal(batch_id=batch)
    assert _visible_bounds(user) == (5, Post.objects.by_author(user).latest("id").id)
    assert _visible_bounds(UserFactory()) == (0, None)

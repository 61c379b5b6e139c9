"""The export benchmark's baselines, each run in a fresh process (peak RSS is read by the parent).

floor: the same rows read with `values_list` (plain tuples, no model instances), serialised to the
       same JSON objects with orjson, chunk by chunk, into a file. No task row, no progress, no
       storage, no email: the least any export of these rows can cost.
naive: every post loaded as a model instance into one list, then `json.dumps` of the whole
       document and one write.

Usage: python -m benchmarks.export_baseline floor|naive USERNAME
"""

from __future__ import annotations

import json
import sys
import time
from itertools import islice

from benchmarks.common import emit_result, output_dir, setup_django

CHUNK_SIZE = 2000


def floor(user, path) -> int:
    import orjson

    from posts.models import Post

    rows = (
        Post.objects.filter(author=user)
        .order_by("id")
        .values_list("id", "body", "created_at")
        .iterator(chunk_size=CHUNK_SIZE)
    )
    written = 0
    with open(path, "wb") as out:
        out.write(b'{"posts":[')
        while chunk := list(islice(rows, CHUNK_SIZE)):
            encoded = orjson.dumps([{"id": pk, "body": body, "created_at": created} for pk, body, created in chunk])
            if written:
                out.write(b",")
            out.write(encoded[1:-1])
            written += len(chunk)
        out.write(b"]}\n")
    return written


def naive(user, path) -> int:
    from posts.models import Post

    posts = list(Post.objects.filter(author=user).order_by("id"))
    document = {
        "user": user.get_username(),
        "count": len(posts),
        "posts": [{"id": p.id, "body": p.body, "created_at": p.created_at.isoformat()} for p in posts],
    }
    with open(path, "w", encoding="utf-8") as out:
        out.write(json.dumps(document))
    return len(posts)


def main() -> None:
    mode, username = sys.argv[1], sys.argv[2]
    setup_django()
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username=username)  # connects to the database untimed
    path = output_dir() / f"baseline-{mode}.json"
    started = time.perf_counter()
    count = {"floor": floor, "naive": naive}[mode](user, path)
    elapsed = time.perf_counter() - started
    size = path.stat().st_size
    path.unlink()
    emit_result({"mode": mode, "count": count, "seconds": elapsed, "bytes": size})


if __name__ == "__main__":
    main()

"""Export throughput and memory.

Project: `export_start()`, then a fresh `manage.py rqworker default --burst` runs the real job in
RQ's work horse (progress published live, the file stored, the email sent to an SMTP server on
loopback); posts/s = posts ÷ (finished_at − started_at). Floor: the same rows read with
`values_list().iterator()` and written as the same JSON by orjson, nothing else. Naive: every post
loaded as a model instance, then one `json.dumps`. Each runs in a fresh process; peak RSS is the
largest of that process tree (for the project: the worker and its work horse).
"""

from __future__ import annotations

import json
import os
import sys
import time
from itertools import islice
from typing import Any

from benchmarks.common import MIB, run_peak_rss, save, start, target

SIZES, SMOKE_SIZES = [1_000, 10_000, 100_000, 1_000_000], [100, 500]
MIN_POSTS_PER_S = {"sqlite": 150_000, "postgres": 80_000}  # targets at the largest size


def author(size: int):
    """Setup: the user `bench-export-<size>` with exactly `size` posts (seeded once, then reused)."""
    from django.contrib.auth import get_user_model

    from posts.models import Post
    from posts.services import posts_seed

    user, _ = get_user_model().objects.get_or_create(
        username=f"bench-export-{size}", defaults={"email": "bench@example.com"}
    )
    if Post.objects.filter(author=user).count() != size:
        Post.objects.filter(author=user).delete()
        posts_seed(author=user, count=size)
    return user


def floor(user, out) -> None:
    import orjson

    from posts.models import Post

    rows = Post.objects.filter(author=user).order_by("id").values_list("id", "body", "created_at").iterator(2000)
    out.write(b'{"posts":[')
    separator = b""
    while chunk := [{"id": i, "body": b, "created_at": c} for i, b, c in islice(rows, 2000)]:
        out.write(separator + orjson.dumps(chunk)[1:-1])
        separator = b","
    out.write(b"]}\n")


def naive(user, out) -> None:
    from posts.models import Post

    posts = list(Post.objects.filter(author=user).order_by("id"))
    document = {"posts": [{"id": p.id, "body": p.body, "created_at": p.created_at.isoformat()} for p in posts]}
    out.write(json.dumps(document).encode())


def baseline(mode: str, size: int) -> tuple[float, float]:
    """A baseline in a fresh process (this script with `floor SIZE` or `naive SIZE`): seconds, peak RSS MiB."""
    lines, peak = run_peak_rss([sys.executable, "-m", "benchmarks.export", mode, str(size)])
    return float(lines[-1]), peak


def project(size: int) -> tuple[float, float, float]:
    """The real export, run by a fresh burst worker: seconds, peak RSS MiB, file MiB."""
    from exports.services import export_start
    from live_tasks.models import Task

    Task.objects.filter(user=author(size)).delete()  # what an interrupted run left
    task = export_start(user=author(size))  # autocommit: enqueued on return
    _, peak = run_peak_rss([sys.executable, "manage.py", "rqworker", "default", "--burst"])
    task.refresh_from_db()
    assert task.status == Task.Status.SUCCEEDED, (task.status, task.error)
    file_mib = task.file.size / MIB
    task.file.delete()
    assert task.finished_at is not None and task.started_at is not None
    return (task.finished_at - task.started_at).total_seconds(), peak, file_mib


def main() -> None:
    args = start(__doc__, database="sqlite")
    from django.db import connection

    from tests.processes import CapturedSMTP

    rows: list[dict[str, Any]] = []
    with CapturedSMTP() as smtp:
        os.environ["EMAIL_URL"] = smtp.url  # the worker sends real email over loopback
        for size in SMOKE_SIZES if args.smoke else SIZES:
            author(size)
            sent = len(smtp.messages)
            seconds, peak, file_mib = project(size)  # first: a cold cache costs the product, not the baselines
            (floor_s, floor_rss), (naive_s, naive_rss) = (baseline(m, size) for m in ("floor", "naive"))
            rows.append(
                {
                    "database": connection.display_name,
                    "posts": size,
                    "project posts/s": size / seconds,
                    "floor posts/s": size / floor_s,
                    "naive posts/s": size / naive_s,
                    "project ÷ floor time": seconds / floor_s,
                    "project peak RSS MiB": peak,
                    "floor peak RSS MiB": floor_rss,
                    "naive peak RSS MiB": naive_rss,
                    "file MiB": file_mib,
                    "emails sent": len(smtp.messages) - sent,
                }
            )
    first, last = rows[0], rows[-1]
    at = f"{connection.display_name}, {last['posts']:,} posts"
    growth = last["project peak RSS MiB"] - first["project peak RSS MiB"]
    targets = [
        target(f"project posts/s ({at})", last["project posts/s"], "≥", MIN_POSTS_PER_S[args.database]),
        target(f"project ÷ floor time ({at})", last["project ÷ floor time"], "≤", 1.3),
        target(f"project peak RSS growth from {first['posts']:,} posts, MiB ({at})", growth, "≤", 30),
    ]
    save(args, f"export-{args.database}", __doc__, {"": rows}, targets)


if __name__ == "__main__" and sys.argv[1] in ("floor", "naive"):  # a baseline's own fresh process
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from benchmarks.common import OUT

    user = get_user_model().objects.get(username=f"bench-export-{sys.argv[2]}")  # connects, untimed
    with open(OUT / "baseline.json", "wb") as out:
        began = time.perf_counter()
        {"floor": floor, "naive": naive}[sys.argv[1]](user, out)
        print(time.perf_counter() - began)
    (OUT / "baseline.json").unlink()
elif __name__ == "__main__":
    main()

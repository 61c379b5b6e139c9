"""Import throughput, memory, and the wait it imposes on others.

Project: `import_start()` of an export file (made once per size: distinct dates, unicode and
HTML-looking bodies), then a fresh `manage.py rqworker default --burst` runs the real job (the
streaming parse, staged batches checked against the user's posts by fingerprint, the one small
commit that reveals them); seconds = finished_at − started_at; peak RSS of the worker's process
tree. Floor: the same rows, their fingerprints computed before the clock starts, inserted in
batches of IMPORT_BATCH_SIZE in a fresh process, nothing else, the way the import inserts on that
database: `bulk_create` on SQLite, one INSERT from binary arrays on PostgreSQL. While the largest
import runs, another user's task changes state every 50 ms through the core's transition (one
conditional UPDATE, then the push); the longest of those waits is reported.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.common import MIB, OUT, percentile, run_peak_rss, save, start, target

SIZES, SMOKE_SIZES = [1_000, 10_000, 100_000, 1_000_000], [100, 500]
BODIES = ["Grüße aus Köln 🌍 #{}", '<b>Post</b> & "quotes" #{}', "שלום עולם #{}", "Plain post number {}"]
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def export_file(size: int):
    """Setup: an export's JSON of `size` posts, written once and reused."""
    import orjson

    path = OUT / f"import-{size}.json"
    if not path.exists():
        with open(path, "wb") as out:
            out.write(b'{"user":"bench","count":%d,"posts":[' % size)
            for start_at in range(0, size, 10_000):
                chunk = [
                    {"id": i, "body": BODIES[i % 4].format(i), "created_at": T0 + timedelta(seconds=i)}
                    for i in range(start_at, min(size, start_at + 10_000))
                ]
                out.write((b"," if start_at else b"") + orjson.dumps(chunk)[1:-1])
            out.write(b"]}\n")
    return path


def fresh_user(name: str):
    from django.contrib.auth import get_user_model

    User = get_user_model()
    User.objects.filter(username=name).delete()  # and the posts and tasks of an earlier run
    return User.objects.create(username=name, email=f"{name}@example.com")


def floor(size: int) -> None:
    """In a fresh process: the rows inserted with bulk_create in batches; prints the seconds."""
    import django

    django.setup()
    import orjson
    from django.conf import settings
    from django.db import connection, transaction

    from posts.models import Post, post_fingerprint

    posts = orjson.loads(export_file(size).read_bytes())["posts"]
    rows = []
    for post in posts:
        created_at = datetime.fromisoformat(post["created_at"])
        rows.append((post["body"], created_at, post_fingerprint(post["body"], created_at)))
    del posts
    user, batch = fresh_user(f"bench-import-floor-{size}"), settings.IMPORT_BATCH_SIZE
    began = time.perf_counter()
    for at in range(0, len(rows), batch):
        with transaction.atomic():
            if connection.vendor == "postgresql":  # as the import inserts there: binary arrays, one statement
                import psycopg

                bodies, dates, fingerprints = zip(*rows[at : at + batch], strict=True)
                connection.ensure_connection()
                with psycopg.Cursor(connection.connection) as cursor:
                    cursor.execute(POSTGRESQL_FLOOR_INSERT, [user.pk, list(bodies), list(dates), list(fingerprints)])
            else:
                Post.all_objects.bulk_create(
                    Post(author=user, body=b, created_at=c, fingerprint=f) for b, c, f in rows[at : at + batch]
                )
    print(time.perf_counter() - began)


POSTGRESQL_FLOOR_INSERT = """
    INSERT INTO posts_post (author_id, body, created_at, fingerprint)
    SELECT %s, * FROM unnest(%b::text[], %b::timestamptz[], %b::bigint[])
"""


def other_users_waits(stop: threading.Event, waits: list[float]) -> None:
    """Another user's task changes state every 50 ms meanwhile; each change's duration in ms."""
    from django.db import connection

    from live_tasks.models import Task
    from live_tasks.state import task_set_detail

    task = Task.objects.create(user=fresh_user("bench-import-other"), kind="export_posts", status="running")
    while not stop.is_set():
        began = time.perf_counter()
        task_set_detail(task.id, f"still here at {began:.3f}")
        waits.append(1000 * (time.perf_counter() - began))
        stop.wait(0.05)
    connection.close()


def project(size: int, *, watch: bool) -> tuple[float, float, list[float]]:
    """The real import by a fresh burst worker: seconds, peak RSS MiB, and the other task's waits."""
    import shutil

    from imports.services import import_start
    from live_tasks.models import Task

    upload = OUT / f"upload-{size}.json"
    shutil.copyfile(export_file(size), upload)
    task = import_start(user=fresh_user(f"bench-import-{size}"), upload=upload, file_name=upload.name)
    stop, waits = threading.Event(), list[float]()
    watcher = threading.Thread(target=other_users_waits, args=(stop, waits))
    if watch:
        watcher.start()
    try:
        _, peak = run_peak_rss([sys.executable, "manage.py", "rqworker", "default", "--burst"], timeout=3600)
    finally:
        stop.set()
        if watch:
            watcher.join()
    task.refresh_from_db()
    assert task.status == Task.Status.SUCCEEDED, (task.status, task.error)
    assert task.detail == f"Imported {size:,} posts.", task.detail
    assert task.finished_at and task.started_at
    return (task.finished_at - task.started_at).total_seconds(), peak, waits


def main() -> None:
    args = start(__doc__, database="sqlite")
    from django.db import connection

    sizes, rows, waits = SMOKE_SIZES if args.smoke else SIZES, list[dict[str, Any]](), list[float]()
    for size in sizes:
        export_file(size)
        seconds, peak, waited = project(size, watch=size == sizes[-1])
        waits = waited or waits
        lines, _ = run_peak_rss([sys.executable, "-m", "benchmarks.imports", "floor", str(size)], timeout=3600)
        floor_s = float(lines[-1])
        rows.append(
            {
                "database": connection.display_name,
                "posts": size,
                "project posts/s": size / seconds,
                "floor posts/s": size / floor_s,
                "project ÷ floor time": seconds / floor_s,
                "project peak RSS MiB": peak,
                "file MiB": export_file(size).stat().st_size / MIB,
            }
        )
    wait_rows: list[dict[str, Any]] = [
        {
            "while importing": f"{sizes[-1]:,} posts",
            "another task's state changes": len(waits),
            "p50 ms": percentile(waits, 50),
            "p99 ms": percentile(waits, 99),
            "longest ms": max(waits, default=None),
        }
    ]
    first, last = rows[0], rows[-1]
    at = f"{connection.display_name}, {last['posts']:,} posts"
    targets = [
        target(f"project ÷ floor time ({at})", last["project ÷ floor time"], "≤", 1.5),
        target(
            f"project peak RSS growth from {first['posts']:,} posts, MiB ({at})",
            last["project peak RSS MiB"] - first["project peak RSS MiB"],
            "≤",
            30,
        ),
        target(f"longest wait of another task's state change, ms ({at})", wait_rows[0]["longest ms"], "≤", 1000),
    ]
    tables = {"": rows, "Another user's task, changing state while the largest import runs:": wait_rows}
    save(args, f"import-{args.database}", __doc__, tables, targets)


if __name__ == "__main__" and sys.argv[1:2] == ["floor"]:
    floor(int(sys.argv[2]))
elif __name__ == "__main__":
    main()

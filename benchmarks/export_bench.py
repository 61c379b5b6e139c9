"""Benchmark 1: export throughput and the work horse's peak memory, on one database.

For each size, the project's export is launched as a user would (export_start: a task row, then
an RQ job on the benchmarks' Redis database), and a fresh `manage.py rqworker default --burst`
runs it: the real job, in RQ's forked work horse, with its progress updates published live, the
file moved into MEDIA_ROOT and the email sent to a real SMTP server on loopback. Throughput is
posts / (task.finished_at - task.started_at); peak RSS is the work horse's (see run_measured).
Beside it, the floor and the naive pattern (export_baseline.py), each in a fresh process too.

Usage: python -m benchmarks.export_bench --sizes 10000,100000,1000000 --reference 1000
"""

from __future__ import annotations

import argparse
import os
import threading
import time

from benchmarks.common import PYTHON, emit_result, flush_bench_redis, run_measured, setup_django

USER_PREFIX = "bench-export-"


class SMTPSink:
    """A real SMTP server on loopback (aiosmtpd) that counts messages and bytes, then drops them."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        from benchmarks.common import free_port

        self.port = free_port()
        self.messages = 0
        self.bytes = 0
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, data_size_limit=256 * 1024 * 1024)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 -- aiosmtpd's hook name
        with self._lock:
            self.messages += 1
            self.bytes += len(envelope.content)
        return "250 OK"

    def __enter__(self) -> SMTPSink:
        self._controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self._controller.stop()


def ensure_author(size: int):
    """The user whose posts are exported, with exactly `size` posts (seeded once, then reused)."""
    from django.contrib.auth import get_user_model

    from posts.models import Post
    from posts.services import posts_seed

    User = get_user_model()
    username = f"{USER_PREFIX}{size}"
    user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
    have = Post.objects.filter(author=user).count()
    seeded = 0.0
    if have != size:
        Post.objects.filter(author=user).delete()
        started = time.perf_counter()
        posts_seed(author=user, count=size)
        seeded = time.perf_counter() - started
    return user, seeded


def run_project(user, env: dict[str, str], size: int) -> dict:
    from exports.models import Task

    from exports.services import export_start

    Task.objects.filter(user=user).delete()
    flush_bench_redis()
    task = export_start(user=user)  # autocommit: the job is enqueued on return
    run = run_measured(
        [PYTHON, "manage.py", "rqworker", "default", "--burst"], env, name=f"export-rqworker-{size}", timeout=900
    )
    task.refresh_from_db()
    if run["returncode"] != 0 or task.status != Task.Status.SUCCEEDED:
        hint = ""
        if task.status == Task.Status.QUEUED:
            hint = "; its job left the queue unrun: did something else flush Redis database 12?"
        raise RuntimeError(f"export of {size} posts ended {task.status!r} (worker exit {run['returncode']}){hint}")
    seconds = (task.finished_at - task.started_at).total_seconds()
    file_size = task.file.size
    task.file.delete(save=False)
    return {"seconds": seconds, "peak_rss": run["peak_rss"], "bytes": file_size, "worker_wall": run["wall"]}


def run_baseline(mode: str, user, env: dict[str, str], size: int) -> dict:
    run = run_measured(
        [PYTHON, "-m", "benchmarks.export_baseline", mode, user.get_username()],
        env,
        name=f"export-{mode}-{size}",
        timeout=900,
    )
    if run["returncode"] != 0 or run["result"] is None:
        raise RuntimeError(f"{mode} baseline of {size} posts failed (exit {run['returncode']})")
    return {"seconds": run["result"]["seconds"], "peak_rss": run["peak_rss"], "bytes": run["result"]["bytes"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", required=True)
    parser.add_argument("--reference", type=int, required=True, help="the small size that peak RSS is compared to")
    options = parser.parse_args()
    sizes = [int(s) for s in options.sizes.split(",")]

    setup_django()
    from django.db import connection

    rows = []
    seeding = {}
    with SMTPSink() as smtp:
        env = dict(os.environ, EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}")
        # The reference size is measured first, once (it may also be one of the sizes).
        for size in dict.fromkeys([options.reference, *sizes]):
            user, seeded = ensure_author(size)
            if seeded:
                seeding[size] = seeded
            # Project first: any cold cache penalises the product, not the baselines.
            row = {"size": size, "project": run_project(user, env, size)}
            for mode in ("floor", "naive"):
                row[mode] = run_baseline(mode, user, env, size)
            row["reference"] = size == options.reference
            rows.append(row)
        emails = smtp.messages
    flush_bench_redis()
    emit_result({"vendor": connection.vendor, "rows": rows, "seeding_seconds": seeding, "emails": emails})


if __name__ == "__main__":
    main()

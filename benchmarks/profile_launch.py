"""Where one launch's milliseconds go: POST /exports/ step by step, against the no-op view.

Not a benchmark of record (it writes no results/ JSON): the breakdown that docs/performance.md
quotes for the launch endpoint. A child process loads the project's ASGI application as daphne
does (project.asgi: the PostgreSQL pool, the frozen collector) and calls it directly, one request
at a time, each a fresh user with their own session as in benchmarks/launch.py, without daphne's
HTTP parsing. Each step is timed exclusive of the steps inside it, in wall time and in the CPU
time of the thread that ran it; SQL and Redis round trips are counted inside the step that made
them. `--cprofile FILE` also writes a cProfile of the view threads (pstats format).

    python -m benchmarks.profile_launch --database postgres [--requests 300] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from functools import wraps
from pathlib import Path
from typing import Any

REQUEST_PATHS = {"launch": "/exports/", "noop": "/bench/noop/"}
CSRF = "b" * 32


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(json.loads(Path(sys.argv[2]).read_text()))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--cprofile", default="")
    options = parser.parse_args()
    sys.argv = [sys.argv[0], "--database", options.database]
    from benchmarks.common import OUT, delete_users, flush_redis, start, users_with_sessions

    start(__doc__, database=options.database)
    warmup = 20
    keys = [key for _, key in users_with_sessions("bench-profile-", warmup + options.requests)]
    config = OUT / "profile-launch.json"
    config.write_text(
        json.dumps({"keys": keys, "warmup": warmup, "cprofile": options.cprofile, "concurrency": options.concurrency})
    )
    try:
        subprocess.run([sys.executable, "-m", "benchmarks.profile_launch", "--child", str(config)], check=True)
    finally:
        delete_users("bench-profile-")
        flush_redis()


class Steps:
    """Exclusive wall and thread-CPU time per named step, over every thread."""

    def __init__(self) -> None:
        self.totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
        self.calls: list[tuple[float, str, float]] = []  # (ended, label, exclusive wall s): the slowest requests'
        self.local = threading.local()
        self.lock = threading.Lock()

    def wrap(self, name: str, fn: Any, *, inside: bool = False) -> Any:
        """`inside`: a round trip, counted as "<name> in <enclosing step>"."""
        steps = self

        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            stack = steps.local.__dict__.setdefault("stack", [])
            label = f"{name} in {stack[-1][0] if stack else '?'}" if inside else name
            wall, cpu = time.perf_counter(), time.thread_time()
            stack.append([label, 0.0, 0.0])
            try:
                return fn(*args, **kwargs)
            finally:
                wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
                _, child_wall, child_cpu = stack.pop()
                with steps.lock:
                    total = steps.totals[label]
                    total[0] += wall - child_wall
                    total[1] += cpu - child_cpu
                    total[2] += 1
                    steps.calls.append((time.perf_counter(), label, wall - child_wall))
                if stack:
                    stack[-1][1] += wall
                    stack[-1][2] += cpu

        return wrapper

    def patch(self, owner: Any, attribute: str, name: str, *, inside: bool = False) -> None:
        setattr(owner, attribute, self.wrap(name, getattr(owner, attribute), inside=inside))

    def reset(self) -> None:
        self.totals.clear()
        self.calls.clear()


def child(config: dict[str, Any]) -> None:
    from project.asgi import application  # as daphne loads it

    if os.environ.get("PROFILE_SWITCH_INTERVAL"):  # an experiment: the GIL's switch interval, s
        sys.setswitchinterval(float(os.environ["PROFILE_SWITCH_INTERVAL"]))

    import django.contrib.auth
    import django.contrib.auth.middleware
    import redis.client
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.handlers.base import BaseHandler
    from django.db import connection
    from django.db.backends import utils as db_utils
    from django.middleware.csrf import CsrfViewMiddleware

    import live_tasks.services as services
    import live_tasks.views as views
    from live_tasks.models import Task

    steps = Steps()
    steps.patch(BaseHandler, "get_response", "request: middleware, view, response (rest)")
    steps.patch(SessionStore, "load", "session: load")
    steps.patch(SessionStore, "save", "session: save")
    steps.patch(django.contrib.auth, "get_user", "auth: the user")
    steps.patch(CsrfViewMiddleware, "process_view", "CSRF check")
    steps.patch(services, "task_start", "task_start (rest)")
    steps.patch(services, "task_launch_count", "rate limit")
    steps.patch(services, "task_quota_check", "quota")
    steps.patch(Task, "save", "insert")
    steps.patch(services, "_enqueue_or_withdraw", "on_commit (rest)")
    steps.patch(services, "task_announce", "publish: the new task's announcement")
    steps.patch(services, "task_job_enqueue", "enqueue")
    steps.patch(services, "task_signal_send", "task_enqueued signal")
    steps.patch(views, "task_to_dict", "answer: task_to_dict")
    steps.patch(views, "JsonResponse", "answer: JsonResponse")
    steps.patch(db_utils.CursorWrapper, "execute", "SQL", inside=True)
    steps.patch(redis.client.Redis, "execute_command", "Redis", inside=True)
    steps.patch(redis.client.Pipeline, "execute", "Redis pipeline", inside=True)
    if connection.vendor == "postgresql":  # before the pool is made: it takes the check then
        from psycopg_pool import ConnectionPool

        steps.patch(ConnectionPool, "check_connection", "pool's health check", inside=True)

    def scope(path: str, key: str) -> dict[str, Any]:
        headers = [
            (b"host", b"127.0.0.1:8000"),
            (b"accept", b"application/json"),
            (b"content-length", b"0"),
            (b"cookie", f"sessionid={key}; csrftoken={CSRF}".encode()),
            (b"x-csrftoken", CSRF.encode()),
        ]
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }

    async def one(path: str, key: str) -> int:
        sent: list[dict[str, Any]] = []

        body_sent = False

        async def receive() -> dict[str, Any]:
            nonlocal body_sent
            if body_sent:  # Django then listens for a disconnect until the response is sent
                await asyncio.Event().wait()
            body_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await application(scope(path, key), receive, send)  # type: ignore[arg-type]
        return sent[0]["status"]

    spans: list[tuple[float, float]] = []  # each request's (began, ended), for the slowest ones' steps

    async def run(path: str, keys: list[str]) -> tuple[list[float], float, list[int]]:
        latencies, statuses, cpu, pending = [], [], time.process_time(), list(keys)
        spans.clear()

        async def client() -> None:  # one of `concurrency` clients, each sending its next request at once
            while pending:
                key = pending.pop()
                began = time.perf_counter()
                statuses.append(await one(path, key))
                latencies.append(1000 * (time.perf_counter() - began))
                spans.append((began, time.perf_counter()))

        await asyncio.gather(*(client() for _ in range(concurrency)))
        return latencies, time.process_time() - cpu, statuses

    keys, warmup, concurrency = config["keys"], config["warmup"], config["concurrency"]
    print(f"{connection.display_name}, {len(keys) - warmup} requests each, {concurrency} at a time, in-process ASGI")
    for path in REQUEST_PATHS.values():
        asyncio.run(run(path, keys[:warmup]))
    profiler = cProfile.Profile() if config["cprofile"] else None
    for name, path in REQUEST_PATHS.items():
        steps.reset()
        if profiler is not None and name == "launch":
            threading.setprofile(lambda *_: profiler.enable())  # the view threads daphne's handler starts
        latencies, cpu, statuses = asyncio.run(run(path, keys[warmup:]))
        threading.setprofile(None)
        n = len(latencies)
        latencies.sort()
        print(
            f"\n{name} ({path}): statuses {sorted(set(statuses))}; wall p50 {latencies[n // 2]:.2f} ms, "
            f"mean {sum(latencies) / n:.2f} ms; process CPU {1000 * cpu / n:.2f} ms per request"
        )
        print(f"{'step (exclusive)':<58} {'calls':>6} {'wall ms':>8} {'CPU ms':>8}")
        for label, (wall, thread_cpu, calls) in sorted(steps.totals.items(), key=lambda item: -item[1][0]):
            print(f"{label:<58} {calls / n:>6.1f} {1000 * wall / n:>8.3f} {1000 * thread_cpu / n:>8.3f}")
        if concurrency == 1:  # one request at a time: a step belongs to the request whose span holds it
            print("the slowest 1%, ms: the request, then its steps over 1 ms")
            for began, ended in sorted(spans, key=lambda span: span[0] - span[1])[: max(1, n // 100)]:
                slow = [(label, 1000 * w) for at, label, w in steps.calls if began <= at <= ended and w > 0.001]
                print(f"  {1000 * (ended - began):.1f}: " + ", ".join(f"{label} {ms:.1f}" for label, ms in slow))
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(config["cprofile"])
    os._exit(0)  # the publisher's and the pool's threads


if __name__ == "__main__":
    main()

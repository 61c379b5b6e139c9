"""Benchmark 4: the launch endpoint, POST /exports/, through one daphne process.

Every request is a different, freshly created user with their own session (so each one inserts a
task and enqueues a real RQ job on the benchmarks' Redis database). Measured at concurrency 1
(p50/p99 latency) and concurrency 20 (requests/s), beside a no-op view on the same server behind
the same middleware (benchmarks/urls.py), sent the same cookies by the same load generator
(http_load.py, a separate process).

Usage: python -m benchmarks.launch_bench --requests 300 --concurrent-requests 1000 --concurrency 20
"""

from __future__ import annotations

import argparse
import json
import os

from benchmarks.common import (
    PYTHON,
    clear_sessions,
    create_users_with_sessions,
    daphne,
    delete_users,
    emit_result,
    flush_bench_redis,
    output_dir,
    percentile,
    run_measured,
    setup_django,
)

USER_PREFIX = "bench-launch-"
PROJECT_PATH = "/exports/"
NOOP_PATH = "/bench/noop/"
WARMUP = 20


def load(server_pid: int, port: int, path: str, concurrency: int, sessions_file, start: int, count: int, name: str):
    import psutil

    server = psutil.Process(server_pid)
    cpu_before = sum(server.cpu_times()[:2])
    run = run_measured(
        [PYTHON, "-m", "benchmarks.http_load", str(port), path, str(concurrency), str(sessions_file)]
        + [str(start), str(count)],
        dict(os.environ),
        name=name,
        timeout=600,
    )
    if run["returncode"] != 0 or run["result"] is None:
        raise RuntimeError(f"http_load failed (exit {run['returncode']})")
    result = run["result"]
    cpu = sum(server.cpu_times()[:2]) - cpu_before
    ms = [1000 * s for s in result["latencies"]]
    return {
        "requests": result["requests"],
        "statuses": result["statuses"],
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "rps": result["requests"] / result["seconds"] if result["seconds"] else None,
        "daphne_cpu_ms": 1000 * cpu / result["requests"] if result["requests"] else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--concurrent-requests", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=20)
    options = parser.parse_args()
    setup_django()
    from django.db import connection

    n1, n20, c = options.requests, options.concurrent_requests, options.concurrency
    clear_sessions()
    sessions = create_users_with_sessions(USER_PREFIX, WARMUP + n1 + n20)
    sessions_file = output_dir() / "launch-sessions.json"
    sessions_file.write_text(json.dumps(sessions))
    flush_bench_redis()
    results = {}
    with daphne(dict(os.environ), name=f"launch-daphne-{connection.vendor}") as (port, server):
        pid = server.pid
        # Warm-up: the first requests of a process import and connect; not measured.
        load(pid, port, NOOP_PATH, 1, sessions_file, 0, WARMUP, "launch-warmup-noop")
        load(pid, port, PROJECT_PATH, 1, sessions_file, 0, WARMUP, "launch-warmup-project")
        # Fresh users for the project; the no-op reads no session, so it reuses the same cookies.
        results["project_c1"] = load(pid, port, PROJECT_PATH, 1, sessions_file, WARMUP, n1, "launch-project-c1")
        results["noop_c1"] = load(pid, port, NOOP_PATH, 1, sessions_file, WARMUP, n1, "launch-noop-c1")
        start = WARMUP + n1
        results["project_cN"] = load(pid, port, PROJECT_PATH, c, sessions_file, start, n20, "launch-project-cN")
        results["noop_cN"] = load(pid, port, NOOP_PATH, c, sessions_file, start, n20, "launch-noop-cN")
    from exports.models import Task

    results["tasks_created"] = Task.objects.filter(user__username__startswith=USER_PREFIX).count()
    results["jobs_enqueued"] = _queued_jobs()
    results["concurrency"] = c
    results["vendor"] = connection.vendor
    delete_users(USER_PREFIX)
    clear_sessions()
    flush_bench_redis()
    emit_result(results)


def _queued_jobs() -> int:
    from exports.queue import default_queue

    return default_queue().count


if __name__ == "__main__":
    main()

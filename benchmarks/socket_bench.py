"""Benchmark 5: socket capacity of one daphne process.

Idle authenticated sockets (each its own user and session, held by ws_load.py in a separate
process) on the project's /ws/notifications/ consumer: daphne's RSS growth per connected socket
at each stage (sockets connect 50 at a time, then RSS is read), and, on a fresh daphne, the
errors while the first stage's number of sockets all connect at once. Baseline: the same on a
consumer that only accepts (benchmarks/asgi.py), behind the same origin check and session auth.

Usage: python -m benchmarks.socket_bench --stages 1000,5000
"""

from __future__ import annotations

import argparse
import json
import os
import time

from benchmarks.common import (
    PYTHON,
    LineChild,
    clear_sessions,
    create_users_with_sessions,
    daphne,
    delete_users,
    emit_result,
    output_dir,
    rss_of,
    setup_django,
)

USER_PREFIX = "bench-idle-"
WARMUP = 10
# Sockets connecting at once while the memory stages fill up (a burst is measured on its own).
GATE = 50
VARIANTS = [
    ("project", "project.asgi:application", "/ws/notifications/"),
    ("noop", "benchmarks.asgi:application", "/ws/bench-noop/"),
]


def run_variant(name: str, app: str, path: str, stages: list[int], clients_file, settle: float) -> dict:
    env = dict(os.environ)
    args = [PYTHON, "-m", "benchmarks.ws_load", "{port}", str(clients_file), path]
    result = {"variant": name, "stages": []}
    # Memory: sockets connect GATE at a time, and daphne's RSS is read once they are all idle.
    with daphne(env, app=app, name=f"sockets-daphne-{name}") as (port, server):
        load = LineChild([a.format(port=port) for a in args], env, f"sockets-{name}")
        try:
            load.read(timeout=30)
            warm = load.ask(f"connect 0 {WARMUP} 0", timeout=120)
            time.sleep(settle)
            base = rss_of(server.pid)
            result.update(warmup_errors=warm["errors"], base_rss=base)
            opened = connected = 0
            for target in stages:
                cpu_before = _cpu(server.pid)
                answer = load.ask(f"connect {WARMUP + opened} {WARMUP + target} {GATE}", timeout=900)
                cpu = _cpu(server.pid) - cpu_before
                opened, connected = target, connected + answer["connected"]
                time.sleep(settle)
                rss = rss_of(server.pid)
                result["stages"].append(
                    {
                        "sockets": target,
                        "connected": connected,
                        "errors": answer["errors"],
                        "connect_seconds": answer["seconds"],
                        "connect_cpu_per_socket": cpu / answer["connected"] if answer["connected"] else None,
                        "rss": rss,
                        "per_socket": (rss - base) / connected if connected else None,
                    }
                )
            load.ask("close", timeout=300)
        finally:
            load.close()
    # Errors while the first stage's sockets all connect at once, on a fresh process.
    with daphne(env, app=app, name=f"sockets-burst-daphne-{name}") as (port, server):
        load = LineChild([a.format(port=port) for a in args], env, f"sockets-burst-{name}")
        try:
            load.read(timeout=30)
            load.ask(f"connect 0 {WARMUP} 0", timeout=120)
            burst = load.ask(f"connect {WARMUP} {WARMUP + stages[0]} 0", timeout=900)
            load.ask("close", timeout=300)
        finally:
            load.close()
    result["burst"] = {
        "sockets": stages[0],
        "connected": burst["connected"],
        "errors": burst["errors"],
        "error_kinds": burst["error_kinds"],
        "seconds": burst["seconds"],
    }
    return result


def _cpu(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stages", required=True)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds between connecting and reading RSS")
    options = parser.parse_args()
    stages = [int(s) for s in options.stages.split(",")]
    setup_django()
    clear_sessions()
    users = create_users_with_sessions(USER_PREFIX, WARMUP + stages[-1])
    clients_file = output_dir() / "socket-clients.json"
    clients_file.write_text(json.dumps([[user_id, key, None] for user_id, key in users]))
    variants = [run_variant(name, app, path, stages, clients_file, options.settle) for name, app, path in VARIANTS]
    delete_users(USER_PREFIX)
    clear_sessions()
    emit_result({"variants": variants})


if __name__ == "__main__":
    main()

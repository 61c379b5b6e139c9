"""Benchmark 2: live progress latency and loss, from the worker-side publish to a WebSocket client.

One daphne process (as in the Procfile) serves N sockets, each its own user with one running task,
held by a separate load process (ws_load.py). A publisher process (live_publisher.py) sends one
progress update per second per task through the project's publish path, then finishes every task
through the real transition. Measured: latency p50/p99, lost progress messages, final states not
received live and final states missed even after a reconnect snapshot.

The same load runs on the project's settings (RedisPubSubChannelLayer) and, as the baseline, on
channels_redis' default RedisChannelLayer (benchmarks/settings_default_layer.py).

Usage: python -m benchmarks.live_bench --sockets 100,1000 --seconds 15
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time

from benchmarks.common import (
    PYTHON,
    ROOT,
    LineChild,
    clear_sessions,
    create_users_with_sessions,
    daphne,
    delete_users,
    emit_result,
    log_path,
    output_dir,
    parse_result,
    percentile,
    setup_django,
)

USER_PREFIX = "bench-ws-"
# Sockets connecting at once while the load is set up (bursts are benchmark 5's subject).
CONNECT_GATE = 50
# After the publisher is done, messages still in flight have this long to arrive.
GRACE_SECONDS = 0.5
LAYERS = [
    ("project", "benchmarks.settings"),
    ("default_layer", "benchmarks.settings_default_layer"),
]


def create_running_tasks(users: list[tuple[int, str]]) -> list[list]:
    from django.utils import timezone
    from exports.models import Task

    now = timezone.now()
    tasks = Task.objects.bulk_create(
        Task(user_id=user_id, status=Task.Status.RUNNING, seq=1, started_at=now, detail="Starting…")
        for user_id, _ in users
    )
    return [[user_id, key, str(task.id)] for (user_id, key), task in zip(users, tasks, strict=True)]


def run_one(layer: str, settings: str, sockets: int, seconds: int) -> dict:
    import psutil

    clear_sessions()
    clients = create_running_tasks(create_users_with_sessions(USER_PREFIX, sockets))
    clients_file = output_dir() / "live-clients.json"
    clients_file.write_text(json.dumps(clients))
    env = dict(os.environ, DJANGO_SETTINGS_MODULE=settings)
    with daphne(env, name=f"live-daphne-{layer}-{sockets}") as (port, server):
        load = LineChild(
            [PYTHON, "-m", "benchmarks.ws_load", str(port), str(clients_file)], env, f"live-load-{layer}-{sockets}"
        )
        try:
            load.read(timeout=30)
            connected = load.ask(f"connect 0 {sockets} {CONNECT_GATE}", timeout=300)
            cpu_before = psutil.Process(server.pid).cpu_times()
            load_cpu_before = psutil.Process(load.proc.pid).cpu_times()
            with open(log_path(f"live-publisher-{layer}-{sockets}"), "w") as log:
                publisher = subprocess.run(
                    [PYTHON, "-m", "benchmarks.live_publisher", str(clients_file), str(seconds)],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                    timeout=seconds + 300,
                    check=True,
                )
            time.sleep(GRACE_SECONDS)  # messages still in flight arrive, or count as lost
            cpu = psutil.Process(server.pid).cpu_times()
            load_cpu = psutil.Process(load.proc.pid).cpu_times()
            finals = load.ask("finals", timeout=300)
            stats = load.ask("stats", timeout=60)
            load.ask("close", timeout=60)
        finally:
            load.close()
    published = parse_result(publisher.stdout)
    from django.db.models import Count
    from exports.models import Task

    statuses = dict(
        Task.objects.filter(user__username__startswith=USER_PREFIX)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    latencies_ms = [1000 * s for s in stats["latencies"]]
    (output_dir() / f"live-latencies-{layer}-{sockets}.json").write_text(
        json.dumps({"sent_at": stats["sent_at"], "latency": stats["latencies"]})
    )
    delete_users(USER_PREFIX)
    return {
        "layer": layer,
        "sockets": sockets,
        "connected": connected["connected"],
        "connect_errors": connected["errors"],
        "seconds": seconds,
        "published": published["published"],
        "received": len(latencies_ms),
        # Messages for sockets that never connected are not lost in delivery: not counted.
        "expected": published["per_task"] * stats["task_sockets"],
        "lost": published["per_task"] * stats["task_sockets"] - len(latencies_ms),
        "p50_ms": percentile(latencies_ms, 50),
        "p99_ms": percentile(latencies_ms, 99),
        "max_ms": max(latencies_ms, default=None),
        "finals": published["finals"],
        "task_statuses_after": statuses,
        "final_live": finals["final_live"],
        "final_recovered": finals["final_recovered"],
        "final_missed": finals["final_missed"],
        "errors": stats["error_kinds"],
        "publisher_lag_max_ms": 1000 * published["schedule_lag_max"],
        "daphne_cpu_seconds": (cpu.user + cpu.system) - (cpu_before.user + cpu_before.system),
        "load_cpu_seconds": (load_cpu.user + load_cpu.system) - (load_cpu_before.user + load_cpu_before.system),
        "publisher_cpu_seconds": published["progress_cpu_seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", required=True)
    parser.add_argument("--seconds", type=int, required=True)
    parser.add_argument("--layers", default=",".join(name for name, _ in LAYERS))
    options = parser.parse_args()
    setup_django()
    runs = []
    for sockets in (int(s) for s in options.sockets.split(",")):
        for layer, settings in (entry for entry in LAYERS if entry[0] in options.layers.split(",")):
            runs.append(run_one(layer, settings, sockets, options.seconds))
    clear_sessions()
    emit_result({"runs": runs})


if __name__ == "__main__":
    main()

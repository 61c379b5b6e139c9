"""Live progress latency and loss.

One daphne process; each socket is its own user (a real session cookie) with one running task,
held by this script over loopback, 50 connecting at a time. A publisher process sends one progress
update per second per task through `live_tasks.push.publish.publish_task_update` for 15 s (spread
evenly over each second), then finishes every task through `task_mark_succeeded`. Latency =
receipt − the publisher's monotonic clock just before the publish call. A final state not received
live is looked for in a fresh socket's snapshot. CPU: seconds used while publishing, by daphne, the
publisher and this load generator. Baselines: the same load on channels_redis' default list-based
`RedisChannelLayer`, and polling /api/tasks/ every 10 s (computed: staleness uniform over 0–10 s).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import time

from benchmarks.common import (
    OUT,
    close_sockets,
    connect_socket,
    cpu_seconds,
    delete_users,
    open_sockets,
    percentile,
    save,
    start,
    target,
    users_with_sessions,
)

SOCKETS, SECONDS, SMOKE_SOCKETS, SMOKE_SECONDS = [100, 1000], 15, [10], 2
LAYERS = {"project (RedisPubSubChannelLayer)": "pubsub", "default RedisChannelLayer": "list"}
CLIENTS = OUT / "live-clients.json"
PATH = "/ws/notifications/"


def running_tasks(count: int) -> list[list]:
    """Setup: `count` users with a session and one running task each: [user id, session key, task id]."""
    from django.utils import timezone

    from live_tasks.models import Task

    users = users_with_sessions("bench-live-", count)
    tasks = Task.objects.bulk_create(
        Task(user_id=user_id, kind="export_posts", status="running", seq=1, started_at=timezone.now())
        for user_id, _ in users
    )
    return [[user_id, key, str(task.id)] for (user_id, key), task in zip(users, tasks, strict=True)]


async def measure(port: int, daphne_pid: int, clients: list[list], seconds: int) -> dict:
    sockets, errors, _ = await open_sockets(port, PATH, [key for _, key, _ in clients], 50)
    gc.freeze()  # the sockets are no garbage: this process's collector must not pause their reading
    latencies, finals = [], set()

    async def read(ws, task_id: str) -> None:
        try:
            async for raw in ws:
                received, task = time.monotonic(), json.loads(raw).get("task", {})
                if "bench_t" in task:
                    latencies.append(1000 * (received - task["bench_t"]))
                elif task.get("status") == "succeeded" and task["id"] == task_id:
                    finals.add(task_id)
        except Exception as exc:
            errors[f"read {type(exc).__name__}"] += 1

    connected = [client for ws, client in zip(sockets, clients, strict=True) if ws]
    readers = [asyncio.create_task(read(ws, client[2])) for ws, client in zip(sockets, clients, strict=True) if ws]
    daphne_cpu, load_cpu = cpu_seconds(daphne_pid), time.process_time()
    publisher = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.live", "publish", str(seconds), stdout=asyncio.subprocess.PIPE
    )
    published = json.loads((await publisher.communicate())[0])
    await asyncio.sleep(0.5)  # what is still in flight arrives now, or counts as lost
    daphne_cpu, load_cpu = cpu_seconds(daphne_pid) - daphne_cpu, time.process_time() - load_cpu
    recovered = 0
    for _, key, task_id in (client for client in connected if client[2] not in finals):
        ws, snapshot = await connect_socket(port, PATH, key)
        recovered += any(t["id"] == task_id and t["status"] == "succeeded" for t in snapshot["tasks"])
        await ws.close()
    await close_sockets(sockets)
    for reader in readers:
        reader.cancel()
    expected = seconds * len(connected)  # sockets that never connected lose nothing in delivery
    return {
        "p50 ms": percentile(latencies, 50),
        "p99 ms": percentile(latencies, 99),
        "max ms": max(latencies, default=None),
        "progress messages": expected,
        "progress lost": expected - len(latencies),
        "finals live": len(finals),
        "finals recovered by snapshot": recovered,
        "finals missed": len(connected) - len(finals) - recovered,
        "connect errors": sum(errors.values()),
        "daphne CPU s": daphne_cpu,
        "publisher CPU s": published["cpu_seconds"],
        "load CPU s": load_cpu,
        # percentile() is None only for no values.
        "quantiles": [round(percentile(latencies, q / 2), 3) for q in range(201)] if latencies else [],  # type: ignore[arg-type]
    }


def publish(seconds: int) -> None:
    """The publisher process: progress for every client's task each second, then every final state."""
    import django

    django.setup()
    from live_tasks import task_to_dict
    from live_tasks.models import Task
    from live_tasks.push.publish import publish_task_update
    from live_tasks.state import task_mark_succeeded

    clients = json.loads(CLIENTS.read_text())
    tasks = {str(task.id): task_to_dict(task) for task in Task.objects.filter(pk__in=[c[2] for c in clients])}
    began, cpu = time.monotonic() + 0.2, time.process_time()
    for tick in range(seconds):
        for n, (user_id, _, task_id) in enumerate(clients):
            ahead = began + tick + n / len(clients) - time.monotonic()
            if ahead > 0.001:
                time.sleep(ahead)
            message = dict(tasks[task_id], seq=tick + 2, progress=tick + 1, bench_t=time.monotonic())
            publish_task_update(user_id=user_id, task=message, wait=False)
    cpu = time.process_time() - cpu  # both threads: the caller's and the publisher's event loop
    for _, _, task_id in clients:
        task_mark_succeeded(task_id, detail="Benchmark task finished")
    print(json.dumps({"cpu_seconds": cpu}))


def main() -> None:
    args = start(__doc__, database="postgres")
    from django.db import connection

    from tests.processes import daphne

    rows, series = [], {}
    seconds = SMOKE_SECONDS if args.smoke else SECONDS
    for sockets in SMOKE_SOCKETS if args.smoke else SOCKETS:
        for label, layer in LAYERS.items():
            clients = running_tasks(sockets)
            CLIENTS.write_text(json.dumps(clients))
            os.environ["BENCH_CHANNEL_LAYER"] = layer  # for daphne and the publisher alike
            with daphne(dict(os.environ)) as (port, proc):
                row = asyncio.run(measure(port, proc.pid, clients, seconds))
            delete_users("bench-live-")
            series[f"{label}, {sockets:,} sockets"] = row.pop("quantiles")
            rows.append({"delivery": label, "database": connection.display_name, "sockets": sockets, **row})
    polling = {"p50 ms": 5000.0, "p99 ms": 9900.0, "max ms": 10000.0, "finals missed": 0}
    rows.append({"delivery": "polling /api/tasks/ every 10 s (computed)", "sockets": "any", **polling})
    top = [row for row in rows if row["delivery"].startswith("project")][-1]
    at = f"project, {top['sockets']:,} sockets"
    targets = [
        target(f"p50 ms ({at})", top["p50 ms"], "≤", 5),
        target(f"p99 ms ({at})", top["p99 ms"], "≤", 25),
        target(f"finals missed after the reconnect snapshot ({at})", top["finals missed"], "≤", 0),
    ]
    save(args, "live", __doc__, {"": rows}, targets, {"latency quantiles ms": series})


if __name__ == "__main__":
    if sys.argv[1:2] == ["publish"]:
        publish(int(sys.argv[2]))
    else:
        main()

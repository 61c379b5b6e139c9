"""Benchmark 3: the cost of publishing one task update from a (synchronous) worker process.

Each measurement runs in a fresh process, which counts the Redis connections it opens (every TCP
connect of redis-py's sync and asyncio connection classes):

project      notifications.publish.publish_task_update, N progress updates then one final one
             (which waits until Redis took it, so the wall time covers all N deliveries)
async_to_sync `async_to_sync(layer.group_send)` for each of the same two groups, per update:
             what a worker without the project's publisher would write
raw          redis-py PUBLISH of the same serialised message to the same two channels, on one
             connection: the floor
job          a real export (exports.jobs.export_posts_job) in a fresh process, as RQ's work horse
             runs it: the connections it opens, and Redis' own view (CLIENT LIST) of the one
             left open at the end

Usage: python -m benchmarks.publish_cost --updates 5000 --naive-updates 300 --job-user USERNAME
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from benchmarks.common import PYTHON, ROOT, emit_result, parse_result, percentile, setup_django

CONNECTS = {"sync": 0, "async": 0}


def count_connections() -> None:
    """Count every TCP connection redis-py opens in this process (sync and asyncio clients)."""
    import redis.asyncio.connection as async_connection
    import redis.connection as sync_connection

    original_sync = sync_connection.Connection._connect
    original_async = async_connection.Connection._connect

    def sync_connect(self):
        CONNECTS["sync"] += 1
        return original_sync(self)

    async def async_connect(self):
        CONNECTS["async"] += 1
        return await original_async(self)

    sync_connection.Connection._connect = sync_connect
    async_connection.Connection._connect = async_connect


def sample_task(user_id: int = 1) -> dict:
    """A realistic Task payload (the shape of exports.selectors.task_to_dict)."""
    return {
        "id": "4c0f1c9e-3c4e-4a55-9b1b-6f0f2f4f9a10",
        "kind": "export_posts",
        "status": "running",
        "progress": 42,
        "seq": 7,
        "detail": "420,000 of 1,000,000 posts",
        "error": "",
        "download_url": None,
        "created_at": "2025-01-01T12:00:00+00:00",
        "started_at": "2025-01-01T12:00:01+00:00",
        "finished_at": None,
    }


def groups(user_id: int) -> tuple[str, str]:
    from notifications.groups import STAFF_GROUP, user_group_name

    return user_group_name(user_id), STAFF_GROUP


def measure_project(updates: int) -> dict:
    from notifications.publish import publish_task_update

    task = sample_task()
    CONNECTS["async"] = CONNECTS["sync"] = 0
    publish_task_update(user_id=1, task=task, wait=True)  # warm-up: the loop thread and its connection
    calls = []
    cpu = time.process_time()
    started = time.perf_counter()
    for seq in range(updates):
        before = time.perf_counter()
        publish_task_update(user_id=1, task=dict(task, seq=seq), wait=False)
        calls.append(time.perf_counter() - before)
    delivered = publish_task_update(user_id=1, task=dict(task, status="succeeded"), wait=True)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    return {
        "per_update_ms": 1000 * wall / (updates + 1),
        "caller_p50_ms": 1000 * percentile(calls, 50),
        "caller_p99_ms": 1000 * percentile(calls, 99),
        "cpu_per_update_ms": 1000 * cpu / (updates + 1),
        "delivered": delivered,
    }


def measure_async_to_sync(updates: int) -> dict:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    task = sample_task()
    CONNECTS["async"] = CONNECTS["sync"] = 0
    cpu = time.process_time()
    started = time.perf_counter()
    for seq in range(updates):
        message = {"type": "task.update", "task": dict(task, seq=seq)}
        for group in groups(1):
            async_to_sync(layer.group_send)(group, message)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    return {"per_update_ms": 1000 * wall / updates, "cpu_per_update_ms": 1000 * cpu / updates}


def measure_raw(updates: int) -> dict:
    import redis
    from channels.layers import get_channel_layer
    from django.conf import settings

    layer = get_channel_layer()
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    channels = [f"{prefix}__group__{group}" for group in groups(1)]  # the pub/sub layer's names
    CONNECTS["async"] = CONNECTS["sync"] = 0
    client = redis.Redis.from_url(settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"])
    client.ping()  # connect before timing, as the project's warm-up does
    task = sample_task()
    cpu = time.process_time()
    started = time.perf_counter()
    for seq in range(updates):
        payload = layer.serialize({"type": "task.update", "task": dict(task, seq=seq)})
        for channel in channels:
            client.publish(channel, payload)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    return {"per_update_ms": 1000 * wall / updates, "cpu_per_update_ms": 1000 * cpu / updates}


def measure_job(username: str) -> dict:
    """A real export job in this fresh process; then who is connected to Redis from here."""
    import psutil
    import redis
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from exports.models import Task

    from benchmarks.export_bench import USER_PREFIX, ensure_author
    from exports.jobs import export_posts_job

    if username.startswith(USER_PREFIX):  # benchmark 1's author; seeded here if 1 did not run
        ensure_author(int(username[len(USER_PREFIX) :]))
    user = get_user_model().objects.get(username=username)
    Task.objects.filter(user=user).delete()
    task = Task.objects.create(user=user)  # as export_start does, without enqueueing: we run it here
    publishes_before = _publish_calls()
    CONNECTS["async"] = CONNECTS["sync"] = 0
    started = time.perf_counter()
    outcome = export_posts_job(str(task.id))
    seconds = time.perf_counter() - started
    opened = dict(CONNECTS)
    task.refresh_from_db()
    redis_port = int(
        settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"].rsplit(":", 1)[1].split("/")[0]
    )
    ours = {
        c.laddr.port
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == redis_port and c.status == psutil.CONN_ESTABLISHED
    }
    # Redis' own view of this process's connections (this inspecting client excluded).
    inspector = redis.Redis.from_url(settings.REDIS_URL)
    me = inspector.client_id()
    seen = [
        {"id": c["id"], "age_s": int(c["age"]), "last_cmd": c.get("cmd"), "port": int(c["addr"].rsplit(":", 1)[1])}
        for c in inspector.client_list()
        if int(c["addr"].rsplit(":", 1)[1]) in ours and int(c["id"]) != me
    ]
    if task.file:
        task.file.delete(save=False)
    task.delete()
    return {
        "outcome": outcome,
        "status": task.status,
        "seconds": seconds,
        "posts": user.posts.count(),
        "publishes": _publish_calls() - publishes_before,
        "connections_opened": opened["async"] + opened["sync"],
        "redis_clients_at_end": seen,
    }


_PUBLISH_COUNT = [0]


def _publish_calls() -> int:
    return _PUBLISH_COUNT[0]


def count_publishes() -> None:
    import notifications.publish as publish

    original = publish.publish_task_update

    def counted(**kwargs):
        _PUBLISH_COUNT[0] += 1
        return original(**kwargs)

    publish.publish_task_update = counted
    # task_state imported the function by name: count calls made through it too.
    import exports.task_state as task_state

    task_state.publish_task_update = counted


def run_child(mode: str, arg: str) -> None:
    count_connections()
    setup_django()
    if mode == "job":
        count_publishes()
        result = measure_job(arg)
    else:
        result = {"project": measure_project, "async_to_sync": measure_async_to_sync, "raw": measure_raw}[mode](
            int(arg)
        )
        result["connections_opened"] = CONNECTS["async"] + CONNECTS["sync"]
        result["updates"] = int(arg)
    emit_result(result)


def child(mode: str, arg: str | int) -> dict:
    proc = subprocess.run(
        [PYTHON, "-m", "benchmarks.publish_cost", "--child", mode, str(arg)],
        cwd=ROOT,
        env=os.environ,
        stdout=subprocess.PIPE,
        stderr=sys.stderr,
        text=True,
        timeout=600,
        check=True,
    )
    return parse_result(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs=2)
    parser.add_argument("--updates", type=int)
    parser.add_argument("--naive-updates", type=int)
    parser.add_argument("--job-user")
    options = parser.parse_args()
    if options.child:
        return run_child(*options.child)
    emit_result(
        {
            "project": child("project", options.updates),
            "async_to_sync": child("async_to_sync", options.naive_updates),
            "raw": child("raw", options.updates),
            "job": child("job", options.job_user),
        }
    )


if __name__ == "__main__":
    main()

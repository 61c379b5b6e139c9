"""Publishing cost in the worker.

One task update goes to the owner's group and the staff group, as the project sends it. Each
method runs in a fresh process that counts the TCP connections redis-py opens. Per update = wall
time of N updates until Redis has taken them all (the project's last update waits for delivery);
caller = time the calling thread is blocked per update. Project: `publish_task_update`. Baselines:
`async_to_sync(layer.group_send)` per group, what a worker without the project's publisher would
do, and redis-py `PUBLISH` of the same message on one connection (the floor). Then a real export
job (the largest export benchmark's author), run as RQ's work horse runs it in a fresh process:
the connections it opens, and the ones Redis' `CLIENT LIST` shows it holding at its end.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from benchmarks.common import REDIS_URL, percentile, save, start, target

UPDATES, NAIVE_UPDATES, JOB_POSTS = 5000, 300, 1_000_000
SMOKE_UPDATES, SMOKE_NAIVE_UPDATES, SMOKE_JOB_POSTS = 100, 10, 500  # the export smoke run's author
CONNECTS = [0]
GROUPS = ("user.1.tasks", "staff.tasks")  # live_tasks.push.groups for user 1


def count_connections() -> None:
    """Count every TCP connection redis-py opens in this process, sync and asyncio."""
    import redis.asyncio.connection as aio
    import redis.connection as sync

    sync_connect, aio_connect = sync.Connection._connect, aio.Connection._connect

    def counted(self):
        CONNECTS[0] += 1
        return sync_connect(self)

    async def aio_counted(self):
        CONNECTS[0] += 1
        return await aio_connect(self)

    sync.Connection._connect, aio.Connection._connect = counted, aio_counted


def sample_task() -> dict:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from live_tasks import task_to_dict
    from live_tasks.models import Task

    owner = get_user_model()(pk=1, username="bench-publish")  # unsaved: whichever users the database has
    task = Task(user=owner, kind="export_posts", status="running", progress=42, seq=7, started_at=timezone.now())
    return task_to_dict(task) | {"detail": "420,000 of 1,000,000 posts"}


def measure(method: str, updates: int) -> dict:
    """`updates` task updates by one method: wall time until Redis has them all, time blocked per call, CPU."""
    import redis
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer
    from django.conf import settings

    from live_tasks.push.publish import publish_task_update

    layer: Any = get_channel_layer()  # channels_redis' pub/sub layer: serialize() is its own
    task = sample_task()
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    client = redis.Redis.from_url(REDIS_URL)

    def send(seq: int) -> None:
        message: dict[str, Any] = {"type": "task.update", "task": dict(task, seq=seq)}
        if method == "project":
            publish_task_update(user_id=1, task=message["task"], wait=False)
        elif method == "async_to_sync":
            for group in GROUPS:
                async_to_sync(layer.group_send)(group, message)
        else:  # the floor: the pub/sub layer's own message, published to its channel names
            payload = layer.serialize(message)
            for group in GROUPS:
                client.publish(f"{prefix}__group__{group}", payload)

    if method == "project":  # warm-up: the publisher's event loop thread and its connection
        publish_task_update(user_id=1, task=task, wait=True)
    elif method == "raw":
        client.ping()  # connected before timing, as the project is
    calls, cpu, began = [], time.process_time(), time.perf_counter()
    for seq in range(updates):
        call = time.perf_counter()
        send(seq)
        calls.append(1000 * (time.perf_counter() - call))
    if method == "project":  # the last update waits for Redis, so the wall time covers every delivery
        publish_task_update(user_id=1, task=dict(task, status="succeeded"), wait=True)
    wall, cpu, n = time.perf_counter() - began, time.process_time() - cpu, updates + (method == "project")
    return {
        "per update ms": 1000 * wall / n,
        "caller p50 ms": percentile(calls, 50),
        "caller p99 ms": percentile(calls, 99),
        "CPU per update ms": 1000 * cpu / n,
        "Redis connections opened": CONNECTS[0],
    }


def job(posts: int) -> dict:
    import psutil
    import redis
    from django.contrib.auth import get_user_model

    import live_tasks.state
    from live_tasks.jobs import task_run_job
    from live_tasks.models import Task

    # live_tasks.state's own name for the function it imports: the one this benchmark counts calls through.
    published, publish = [], live_tasks.state.publish_task_update  # type: ignore[attr-defined]

    def counted(**kwargs):
        published.append(kwargs["task"]["seq"])
        return publish(**kwargs)

    live_tasks.state.publish_task_update = counted  # type: ignore[attr-defined]  # every transition publishes through this name
    user = get_user_model().objects.get(username=f"bench-export-{posts}")
    Task.objects.filter(user=user).delete()
    task = Task.objects.create(user=user, kind="export_posts")  # as export_start does, minus the queue
    CONNECTS[0], began = 0, time.perf_counter()
    outcome = task_run_job(str(task.id))
    seconds, opened = time.perf_counter() - began, CONNECTS[0]
    mine = {c.laddr.port for c in psutil.Process().net_connections("tcp") if c.raddr and c.raddr.port == 6379}
    inspector = redis.Redis.from_url(REDIS_URL)
    held = [
        f"id {c['id']}, open {c['age']} s, last command {c['cmd']}"
        for c in inspector.client_list()
        if int(c["addr"].rsplit(":", 1)[1]) in mine and int(c["id"]) != inspector.client_id()
    ]
    task.refresh_from_db()
    task.file.delete()
    task.delete()
    return {
        "posts": posts,
        "outcome": outcome,
        "seconds": seconds,
        "task updates published": len(published),
        "Redis connections opened": opened,
        "held at its end (Redis CLIENT LIST)": "; ".join(held),
    }


def child(method: str, count: int) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.publish", "child", method, str(count)],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(proc.stdout.splitlines()[-1])


def main() -> None:
    args = start(__doc__, database="sqlite")
    from benchmarks.export import author

    updates, naive, posts = (
        (SMOKE_UPDATES, SMOKE_NAIVE_UPDATES, SMOKE_JOB_POSTS) if args.smoke else (UPDATES, NAIVE_UPDATES, JOB_POSTS)
    )
    author(posts)  # seeded here if the export benchmark did not run
    methods = {
        "project: publish_task_update": ("project", updates),
        "async_to_sync(layer.group_send) per group": ("async_to_sync", naive),
        "redis-py PUBLISH, one connection (floor)": ("raw", updates),
    }
    rows = [{"method": label, "updates": n, **child(method, n)} for label, (method, n) in methods.items()]
    job_row = child("job", posts)
    targets = [
        target("project: ms per update", rows[0]["per update ms"], "≤", 0.5),
        target(
            f"Redis connections opened by an export job of {posts:,} posts", job_row["Redis connections opened"], "≤", 1
        ),
    ]
    save(args, "publish", __doc__, {"": rows, "A real export job, in a fresh process:": [job_row]}, targets)


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        count_connections()
        import django

        django.setup()
        method, count = sys.argv[2], int(sys.argv[3])
        print(json.dumps(job(count) if method == "job" else measure(method, count)))
    else:
        main()

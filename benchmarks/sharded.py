"""Sharded channel layer: sockets over four daphnes and two Redis shards, and a shard restart.

Four daphne processes and two `rqworker default` on PostgreSQL; the channel layer on Redis servers
that this script starts (`CHANNEL_LAYERS` hosts: two entries, which channels_redis picks between by
a hash of each group's name), the queue on a third. 1,000 users with 10 open pages each (10,000
signed-in sockets, each user's pages spread over the four daphnes), held by this script over
loopback, 25 connecting at a time per daphne; the daphnes re-check each socket's session every 600 s
instead of 30 s (the last table says why). Memory: the daphnes' RSS growth, over their RSS with 10
sockets each, ÷ the sockets, once idle; their CPU while idle. Then 100 users launch an export of 20
posts (`POST /exports/`, within one second, alternating daphnes); push latency = a final state's
read on each of its user's sockets − the task's `finished_at` (the worker's clock; one machine),
split where this script's own subscriber on the shards read it. Then 100 more exports, and one
channel-layer Redis is killed (SIGKILL) once a third of them have finished and started again on its
port 2 s later: the final states not read live, by when their task finished; then every socket that
missed one reconnects, and a final state missing from its snapshot is lost. Baseline, in the same
run: the same with one channel-layer Redis. Last, side by side, two daphnes with 1,000 idle sockets
each, whose sessions are re-checked every 30 s (the default) and every 600 s: their CPU.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import resource
import sys
import time
from collections import Counter, defaultdict
from contextlib import ExitStack
from datetime import datetime

from benchmarks.burst import launch
from benchmarks.common import (
    MIB,
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

USERS, TABS, TASKS, POSTS, DAPHNES, WORKERS, WARMUP, AT_ONCE, DOWN, SETTLE = 1000, 10, 100, 20, 4, 2, 10, 25, 2.0, 2.0
SMOKE_USERS, SMOKE_TASKS, SMOKE_WARMUP, SMOKE_DOWN, SMOKE_SETTLE = 4, 4, 1, 1.0, 0.3
# Each socket re-checks its session every LIVE_TASKS["SESSION_RECHECK_SECONDS"] (30 s): at 10,000 sockets
# that alone wants more than this machine's two cores (the re-check table), so the daphnes here re-check
# every 10 minutes. RECHECK_SOCKETS idle sockets on each of two daphnes, one per period, measure the cost.
RECHECK, RECHECK_SOCKETS, RECHECK_IDLE, SMOKE_RECHECK_SOCKETS, SMOKE_RECHECK_IDLE = 600, 1000, 30, 20, 2
LAYERS = {"2 Redis shards": 2, "1 Redis (baseline)": 1}
PATH, FINAL = "/ws/notifications/", ("succeeded", "failed", "cancelled")


class Feed:
    """The held sockets (a daphne and a user each) and every final state they read."""

    def __init__(self, sockets: list, owners: list[int]) -> None:
        self.sockets, self.owners = sockets, owners  # owners[n]: the user index of socket n
        self.finals: dict[int, dict[str, float]] = defaultdict(dict)  # socket -> task id -> read at (wall clock)
        self.finished: dict[str, float] = {}  # task id -> its finished_at
        self.closed: set[int] = set()  # sockets that the server closed (or that broke)
        self.errors: Counter[str] = Counter()
        self.lags: list[float] = []
        self.readers = [asyncio.create_task(self.read(n, ws)) for n, ws in enumerate(sockets) if ws]
        self.readers.append(asyncio.create_task(self.watch_lag()))

    async def read(self, n: int, ws) -> None:
        try:
            async for raw in ws:
                received, task = time.time(), json.loads(raw).get("task")
                if task and task["status"] in FINAL:
                    self.finished[task["id"]] = datetime.fromisoformat(task["finished_at"]).timestamp()
                    self.finals[n].setdefault(task["id"], received)
        except Exception as exc:
            self.errors[f"read {type(exc).__name__}"] += 1
        self.closed.add(n)

    async def watch_lag(self) -> None:
        while True:
            began = time.monotonic()
            await asyncio.sleep(0.01)
            self.lags.append(1000 * (time.monotonic() - began - 0.01))

    def of_user(self, user: int) -> list[int]:
        return [n for n, owner in enumerate(self.owners) if owner == user and self.sockets[n]]

    def stop(self) -> None:
        for reader in self.readers:
            reader.cancel()
        for ws in self.sockets:
            if ws:
                ws.transport.abort()  # the daphnes are stopped next; 10,000 closing handshakes are no figure


async def listen(url: str, pattern: str, published: dict[str, float]) -> None:
    """A subscriber of this script's own on one shard: when each final state reached Redis."""
    from channels_redis.serializers import registry
    from redis.asyncio import Redis

    serializer, client = registry.get_serializer("msgpack"), Redis.from_url(url)
    async with client.pubsub() as pubsub:
        await pubsub.psubscribe(pattern)
        async for message in pubsub.listen():
            if message["type"] == "pmessage":
                task = serializer.deserialize(message["data"]).get("task") or {}
                if task.get("status") in FINAL:
                    published.setdefault(task["id"], time.time())


def finished(task_ids: list[str]) -> int:
    from live_tasks.models import Task

    return Task.objects.filter(pk__in=task_ids, status__in=FINAL).count()


async def run_exports(ports: list[int], users: list[tuple[int, str]], settle: float, on_progress=None) -> list[str]:
    """Every user's POST /exports/ within one second, alternating daphnes; wait until all are final."""

    async def click(n: int, key: str):
        await asyncio.sleep(n / len(users))
        return await launch(ports[n % len(ports)], key)

    launches = await asyncio.gather(*(click(n, key) for n, (_, key) in enumerate(users)))
    ids = [body["id"] for *_, status, body in launches if status == 202]
    assert len(ids) == len(users), Counter(status for *_, status, _ in launches)
    deadline = time.monotonic() + 300
    while (done := await asyncio.to_thread(finished, ids)) < len(ids):
        assert time.monotonic() < deadline, "the exports did not all finish"
        if on_progress:
            await on_progress(done)
        await asyncio.sleep(0.05)
    await asyncio.sleep(settle)  # the last pushes arrive
    return ids


async def measure(ports, pids, users, tasks, warmup, down, settle, shard_urls, restart_shard) -> dict:
    import psutil

    # Socket n is tab n // users of user n % users, on daphne (user + tab) % DAPHNES.
    owners = [n % len(users) for n in range(len(users) * TABS)]
    on = [[n for n in range(len(owners)) if (owners[n] + n // len(users)) % DAPHNES == d] for d in range(DAPHNES)]
    sockets: list = [None] * len(owners)
    errors: Counter[str] = Counter()

    async def connect(group: list[list[int]]) -> float:
        began = time.monotonic()
        opened = await asyncio.gather(
            *(open_sockets(ports[d], PATH, [users[owners[n]][1] for n in ns], AT_ONCE) for d, ns in enumerate(group))
        )
        for ns, (wss, failed, _) in zip(group, opened, strict=True):
            errors.update(failed)
            for n, ws in zip(ns, wss, strict=True):
                sockets[n] = ws
        return time.monotonic() - began

    rss = lambda: sum(psutil.Process(pid).memory_info().rss for pid in pids)  # noqa: E731
    await connect([ns[:warmup] for ns in on])
    await asyncio.sleep(settle)
    base = rss()
    connect_s = await connect([ns[warmup:] for ns in on])
    gc.freeze()  # the sockets are no garbage: this process's collector must not pause their reading
    await asyncio.sleep(2 * settle)  # idle: the connects' work is done
    growth, measured = rss() - base, sum(ws is not None for ws in sockets) - warmup * DAPHNES
    cpu = sum(cpu_seconds(pid) for pid in pids)
    await asyncio.sleep(2 * settle)
    idle_cpu = (sum(cpu_seconds(pid) for pid in pids) - cpu) / (2 * settle)
    feed = Feed(sockets, owners)

    from django.conf import settings

    from live_tasks.models import Task
    from live_tasks.push.groups import user_group_name

    prefix, shards = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"], len(shard_urls)

    # Steady: 100 exports, every shard up.
    published: dict[str, float] = {}
    listeners = [asyncio.create_task(listen(url, f"{prefix}__group__user.*", published)) for url in shard_urls]
    await asyncio.sleep(settle)
    steady_users = list(range(tasks))
    steady = await run_exports(ports, [users[u] for u in steady_users], settle)
    for listener in listeners:
        listener.cancel()
    reads = [(t, feed.finals[n].get(t)) for u, t in zip(steady_users, steady, strict=True) for n in feed.of_user(u)]
    latencies = [1000 * (read - feed.finished[t]) for t, read in reads if read]
    to_redis = [1000 * (published[t] - feed.finished[t]) for t in steady if t in published and t in feed.finished]
    from_redis = [1000 * (read - published[t]) for t, read in reads if read and t in published]
    expected = len(reads)

    # A shard restart: 100 more exports (the last users), one Redis killed after a third of them finished.
    restart_users = list(range(len(users) - tasks, len(users)))
    events: dict[str, float] = {}

    async def kill_and_restart(done: int) -> None:
        if "killed" not in events and done >= math.ceil(tasks / 3):
            restart_shard.proc.kill()
            restart_shard.proc.wait()
            events["killed"] = time.time()
            await asyncio.sleep(down)
            await asyncio.to_thread(restart_shard.start)  # the same port, empty
            events["back"] = time.time()

    restarted = await run_exports(ports, [users[u] for u in restart_users], settle, kill_and_restart)
    await asyncio.sleep(settle)  # pushes after the restart, if the daphnes subscribed again
    rows = await asyncio.to_thread(lambda: list(Task.objects.filter(pk__in=restarted).values_list("id", "finished_at")))
    ends = {str(task_id): at.timestamp() for task_id, at in rows if at}  # all final: run_exports waited

    def on_restarted_shard(user_id: int) -> bool:
        from channels_redis.utils import _consistent_hash  # the layer's own choice of shard

        return _consistent_hash(f"{prefix}__group__{user_group_name(user_id)}", shards) == shards - 1

    lost: Counter[str] = Counter()
    missed: list[tuple[int, str]] = []
    closed_by_server = len(feed.closed)
    for u, t in zip(restart_users, restarted, strict=True):
        for n in feed.of_user(u):
            if t not in feed.finals[n]:
                missed.append((n, t))
                when = "before" if ends[t] < events["killed"] else "down" if ends[t] < events["back"] else "after"
                lost[when] += 1
                lost["surviving shard"] += not on_restarted_shard(users[u][0])
    recovered = 0
    for n, t in missed:  # as live.js would after a close: a new socket, and its snapshot
        if n not in feed.closed:
            await sockets[n].close()
        d = (owners[n] + n // len(users)) % DAPHNES
        ws, snapshot = await connect_socket(ports[d], PATH, users[owners[n]][1])
        recovered += any(task["id"] == t and task["status"] in FINAL for task in snapshot["tasks"])
        await ws.close()
    feed.stop()
    restart_expected = sum(len(feed.of_user(u)) for u in restart_users)
    return {
        "sockets": sum(ws is not None for ws in sockets),
        "users": len(users),
        "connect errors": sum(errors.values()),
        "error kinds": ", ".join(f"{n} × {kind}" for kind, n in errors.items()) or None,
        "connect s": connect_s,
        "daphne RSS growth MiB": growth / MIB,
        "KiB per socket": growth / 1024 / measured,
        "idle daphnes CPU % per 1,000 sockets": 100 * idle_cpu / (sum(ws is not None for ws in sockets) / 1000),
        "final push p50 ms": percentile(latencies, 50),
        "final push p99 ms": percentile(latencies, 99),
        "final push max ms": max(latencies, default=None),
        "… finished_at → Redis p50 ms": percentile(to_redis, 50),
        "… finished_at → Redis p99 ms": percentile(to_redis, 99),
        "… Redis → socket p50 ms": percentile(from_redis, 50),
        "… Redis → socket p99 ms": percentile(from_redis, 99),
        "finals lost (no restart)": expected - len(latencies),
        "load generator loop lag p99 ms": percentile(feed.lags, 99),
        "restart: finals lost live": len(missed),
        "finals missed after the reconnect snapshot": len(missed) - recovered,
        "restart": {
            "finals expected": restart_expected,
            "users on the restarted Redis": sum(on_restarted_shard(users[u][0]) for u in restart_users),
            "exports": len(restarted),
            "finished while it was down": sum(events["killed"] <= end < events["back"] for end in ends.values()),
            "finals lost live": len(missed),
            "… task finished before the kill": lost["before"],
            "… while it was down": lost["down"],
            "… after it was back": lost["after"],
            "… of users on the other shard": lost["surviving shard"],
            "sockets closed by the server": closed_by_server,
            "sockets reconnected": len(missed),
            "finals in their snapshot": recovered,
            "finals missed after the reconnect snapshot": len(missed) - recovered,
        },
    }


def recheck_cost(periods: list[float], keys: list[list[str]], idle: float) -> list[dict]:
    """One daphne per period, its sockets re-checking their session every `period` seconds, side by
    side: each daphne's CPU while its sockets are idle."""
    from tests.processes import free_port, running, wait_for_port

    ports = [free_port() for _ in periods]
    with ExitStack() as stack:
        procs = [
            stack.enter_context(
                running(
                    [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "project.asgi:application"],
                    dict(os.environ, LIVE_SESSION_RECHECK_SECONDS=f"{period:g}"),
                    f"shard-recheck-{port}",
                )
            )
            for port, period in zip(ports, periods, strict=True)
        ]
        for port in ports:
            wait_for_port(port)

        async def hold() -> list[tuple[int, float]]:
            opened = await asyncio.gather(
                *(open_sockets(p, PATH, k, AT_ONCE) for p, k in zip(ports, keys, strict=True))
            )
            await asyncio.sleep(idle / 6)  # the connects' work is done
            cpu = [cpu_seconds(proc.pid) for proc in procs]
            await asyncio.sleep(idle)
            used = [cpu_seconds(proc.pid) - before for proc, before in zip(procs, cpu, strict=True)]
            await asyncio.gather(*(close_sockets(sockets) for sockets, _, _ in opened))
            return [(sum(ws is not None for ws in sockets), u) for (sockets, _, _), u in zip(opened, used, strict=True)]

        measured = asyncio.run(hold())
    return [
        {
            "session re-check": f"every {period:g} s" + (" (the default)" if period == 30 else " (the daphnes above)"),
            "idle sockets": connected,
            "seconds measured": idle,
            "daphne CPU % of a core": 100 * used / idle,
            "CPU % per 1,000 sockets": 100 * used / idle / (connected / 1000),
            "cores for 10,000 sockets": used / idle / connected * 10_000,
        }
        for period, (connected, used) in zip(periods, measured, strict=True)
    ]


def main() -> None:
    args = start(__doc__, database="postgres")
    began = time.monotonic()
    from django.contrib.auth import get_user_model

    from posts.services import posts_seed
    from tests.processes import RedisServer, free_port, running, wait_for_port

    n_users, tasks, warmup, down, settle = (
        (SMOKE_USERS, SMOKE_TASKS, SMOKE_WARMUP, SMOKE_DOWN, SMOKE_SETTLE)
        if args.smoke
        else (USERS, TASKS, WARMUP, DOWN, SETTLE)
    )
    needed = n_users * TABS + 1024  # every socket is a descriptor here, and a quarter of them in each daphne
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:  # start() raised the soft limit to the hard one; root may raise both
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, max(hard, needed)))  # children inherit it
    users = users_with_sessions("bench-shard-", n_users)
    for user in get_user_model().objects.filter(pk__in=[pk for pk, _ in users[:tasks] + users[-tasks:]]):
        posts_seed(author=user, count=POSTS)
    rows, restarts = [], []
    for label, shards in LAYERS.items():
        # The queue on a Redis of its own: other checkouts' benchmarks share database 12 of the main one.
        servers, queue = [RedisServer() for _ in range(shards)], RedisServer()
        hosts = ",".join(server.url for server in servers)
        env = dict(
            os.environ, BENCH_CHANNEL_LAYER_HOSTS=hosts, REDIS_URL=queue.url, LIVE_SESSION_RECHECK_SECONDS=str(RECHECK)
        )
        ports = [free_port() for _ in range(DAPHNES)]
        daphne = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", "project.asgi:application"]
        worker = [sys.executable, "manage.py", "rqworker", "default"]
        with ExitStack() as stack:
            for server in [*servers, queue]:
                stack.enter_context(server)
            procs = [
                stack.enter_context(running([a.format(port=port) for a in daphne], env, f"shard-daphne-{port}"))
                for port in ports
            ]
            for n in range(WORKERS):
                stack.enter_context(running(worker, env, f"shard-worker-{n}"))
            for port in ports:
                wait_for_port(port)
            time.sleep(settle)  # the workers are up and waiting
            pids = [proc.pid for proc in procs]
            row = asyncio.run(
                measure(
                    ports, pids, users, tasks, warmup, down, settle, [server.url for server in servers], servers[-1]
                )
            )
        restarts.append({"channel layer": label, **row.pop("restart")})
        rows.append({"channel layer": label, "daphnes": DAPHNES, **row})
    per_daphne = (SMOKE_RECHECK_SOCKETS if args.smoke else RECHECK_SOCKETS) // TABS  # users, 10 tabs each
    recheck_keys = [[key for _, key in users[n * per_daphne : (n + 1) * per_daphne]] * TABS for n in (0, 1)]
    idle = SMOKE_RECHECK_IDLE if args.smoke else RECHECK_IDLE
    rechecks = recheck_cost([30, RECHECK], recheck_keys, idle)
    delete_users("bench-shard-")
    print(f"measured in {time.monotonic() - began:.0f} s", flush=True)
    top = rows[0]
    targets = [
        target(f"KiB per idle socket ({top['sockets']:,} sockets, 2 shards)", top["KiB per socket"], "<", 60),
        target("final push p99 ms (2 shards)", top["final push p99 ms"], "≤", 100),
        target(
            "finals missed after the reconnect snapshot, shard restarted",
            top["finals missed after the reconnect snapshot"],
            "≤",
            0,
        ),
    ]
    tables = {
        "": rows,
        "One channel-layer Redis killed and restarted on its port mid-run:": restarts,
        "The session re-check's cost while the sockets are idle (a daphne each, the benchmarks' Redis):": rechecks,
    }
    save(args, "sharded", __doc__, tables, targets)


if __name__ == "__main__":
    main()

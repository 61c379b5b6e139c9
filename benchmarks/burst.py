"""A burst of exports: many people click Export within one second.

The same burst twice, on RQ then on Celery (`QUEUE_BACKEND` "celery", RabbitMQ, the queue
`live-tasks-bench`; the first burst's tasks deleted in between): two daphnes and two job
processes, either two `rqworker default` (each forks a work horse per job) or one Celery worker
with a prefork pool of two children (no fork per job), on PostgreSQL, emails to an SMTP sink in
its own process; 100 users with 2,000 posts each, each with 10 open pages (1,000 sockets, every
user's pages split over both daphnes). Every user's POST /exports/ (a JSON client, one connection each) is sent within
one second, alternating daphnes. From this load generator, over loopback: launch latency (sent →
answer read); final-state push latency (the task's finished_at → the message read on each of its
user's 10 sockets, one wall clock), for pushes read while launches were still in flight and after;
launch → the first `running` read; the makespan (first launch sent → last finished_at) and
exports/s; the CPU seconds of every process. The load generator's own event-loop lag is beside them.
Floors, in the same run: the no-op job throughput of each queue with the same workers (RQ with the
project's worker class; on Celery a task acknowledged late, as the library's), and the export's raw
work (the streaming writer alone) for the same posts; floor makespan of each = (posts × the
writer's time per post + exports × its no-op job's time) ÷ 2 job processes.

BENCH_BURST_SPY=1 also records py-spy (raw, on-CPU samples) of both daphnes from the first click
to the last export's end, into OUT/spy-burst-<backend>-daphne-<A|B>.txt: where the web's CPU goes
during the burst (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from typing import Any

from benchmarks.common import (
    CELERY_QUEUE,
    OUT,
    celery_env,
    celery_queue,
    celery_worker,
    close_sockets,
    flush_redis,
    open_sockets,
    percentile,
    save,
    start,
    target,
    users_with_sessions,
)

USERS, TABS, POSTS, NOOP_JOBS = 100, 10, 2000, 400
SMOKE_USERS, SMOKE_TABS, SMOKE_POSTS, SMOKE_NOOP_JOBS = 4, 2, 50, 20
BACKENDS = {"rq": "RQ", "celery": "Celery"}
REQUEST = (
    "POST /exports/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\nContent-Length: 0\r\n"
    "Cookie: sessionid={key}; csrftoken={csrf}\r\nX-CSRFToken: {csrf}\r\nConnection: close\r\n\r\n"
)


def noop() -> None:
    """The no-op job of the throughput floor."""


async def launch(port: int, key: str) -> tuple[float, float, int, dict]:
    """One user's click: (sent, answered) wall times, the status, the Task JSON."""
    sent = time.time()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(REQUEST.format(port=port, key=key, csrf="b" * 32).encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
    length = re.search(rb"(?i)content-length: *(\d+)", head)
    assert length, head
    body = await reader.readexactly(int(length[1]))
    answered = time.time()
    writer.close()
    return sent, answered, int(head[9:12]), json.loads(body) if body.startswith(b"{") else {}


async def burst(ports: list[int], users: list[tuple[int, str]], tabs: int, on_start) -> dict:
    keys = [key for _, key in users]
    sockets: list[Any] = []
    errors: Counter[str] = Counter()
    for port in ports:  # each user's pages, half on each daphne
        opened, failed, _ = await open_sockets(port, "/ws/notifications/", keys * (tabs // len(ports)), 50)
        sockets += opened
        errors.update(failed)
    gc.freeze()  # a thousand sockets are no garbage: this process's collector must not pause their reading
    running: dict[str, float] = {}  # task id -> first `running` read
    finals: dict[str, list[float]] = defaultdict(list)  # task id -> each final read

    async def read(ws) -> None:
        try:
            async for raw in ws:
                message = json.loads(raw)
                task = message.get("task") or {}
                if task.get("status") == "running":
                    running.setdefault(task["id"], time.time())
                elif task.get("status") in ("succeeded", "failed"):
                    finals[task["id"]].append(time.time())
        except Exception as exc:
            errors[f"read {type(exc).__name__}"] += 1

    lags, stop = [], asyncio.Event()

    async def watch_lag() -> None:
        while not stop.is_set():
            began = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(1000 * (time.monotonic() - began - 0.01))

    readers = [asyncio.create_task(read(ws)) for ws in sockets if ws]
    watcher = asyncio.create_task(watch_lag())
    await asyncio.sleep(1)  # the snapshots are in; the pages are idle
    on_start()  # the CPU counters start here: opening the sockets is not the burst

    async def click(n: int, key: str):
        await asyncio.sleep(n / len(keys))  # every click within one second
        return await launch(ports[n % len(ports)], key)

    launches = await asyncio.gather(*(click(n, key) for n, key in enumerate(keys)))
    stop.set()
    return {
        "launches": launches,
        "running": running,
        "finals": finals,
        "errors": errors,
        "lags": lags,
        "sockets": sockets,
        "readers": readers,
        "watcher": watcher,
    }


def await_finished(task_ids: list[str], timeout: float = 300) -> list:
    from live_tasks.models import Task

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = list(Task.objects.filter(pk__in=task_ids))
        if len(tasks) == len(task_ids) and all(task.is_finished for task in tasks):
            return tasks
        time.sleep(0.1)
    raise TimeoutError("the burst's exports did not all finish")


def servers(rabbitmq: bool = False) -> dict[str, int]:
    """Redis and PostgreSQL's main processes (PostgreSQL's backends are children of it); RabbitMQ's."""
    import psutil

    found = {}
    for proc in psutil.process_iter(["name", "cmdline", "ppid"]):
        name, cmdline = proc.info["name"] or "", " ".join(proc.info["cmdline"] or [])
        if name == "redis-server" and ":6379" in cmdline:
            found["Redis (shared with other work on the machine)"] = proc.pid
        elif name in ("postgres", "postmaster") and proc.info["ppid"] == 1:
            found["PostgreSQL, all its backends (shared with other work)"] = proc.pid
        elif rabbitmq and name == "beam.smp":
            found["RabbitMQ (shared with other work on the machine)"] = proc.pid
    return found


def noop_floor(jobs: int) -> float:
    """Seconds for the two (idle) RQ workers to run `jobs` no-op jobs."""
    from rq.registry import FinishedJobRegistry

    from live_tasks.queue.rq import default_queue

    queue, finished = default_queue(), FinishedJobRegistry("default", connection=default_queue().connection)
    before = finished.count
    began = time.monotonic()
    with queue.connection.pipeline() as pipe:
        for _ in range(jobs):
            queue.enqueue_call("benchmarks.burst.noop", pipeline=pipe)
        pipe.execute()
    while finished.count - before < jobs:
        time.sleep(0.01)
    return time.monotonic() - began


def celery_noop_floor(jobs: int) -> float:
    """Seconds for the (idle) Celery worker's two pool children to run `jobs` no-op tasks."""
    from benchmarks.celery_app import NOOP_COUNTER, app, noop
    from live_tasks import redisclients

    counter = redisclients.rq_connection()
    counter.delete(NOOP_COUNTER)
    began = time.monotonic()
    with app.producer_or_acquire() as producer:  # one connection for all, as RQ's one pipeline
        for _ in range(jobs):
            noop.apply_async(queue=CELERY_QUEUE, producer=producer)
    while int(counter.get(NOOP_COUNTER) or 0) < jobs:
        time.sleep(0.01)
    return time.monotonic() - began


def writer_floor(user_id: int) -> float:
    """Seconds per post for the export's streaming writer alone, on one burst user's posts."""
    from django.contrib.auth import get_user_model

    from exports.writer import write_posts_json

    author = get_user_model().objects.get(pk=user_id)
    began = time.perf_counter()
    count = write_posts_json(author=author, out=io.BytesIO(), chunk_size=2000, on_progress=lambda done, total: None)
    return (time.perf_counter() - began) / count


def spy(pid: int, out) -> subprocess.Popen:
    py_spy = os.path.join(os.path.dirname(sys.executable), "py-spy")
    command = [py_spy, "record", "--pid", str(pid), "--nonblocking", "-r", "200", "-f", "raw", "-o", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure(backend: str, users: list[tuple[int, str]], tabs: int, noop_jobs: int) -> dict:
    """The burst on one queue backend: its own SMTP sink, two daphnes and workers; then its no-op floor."""
    import psutil

    from tests.processes import daphne, free_port, running, wait_for_port

    smtp_port = free_port()
    env = dict(os.environ, EMAIL_URL=f"smtp://127.0.0.1:{smtp_port}")
    sink = [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l", f"127.0.0.1:{smtp_port}"]
    if backend == "celery":
        env = celery_env(env)  # the daphnes enqueue on Celery
        celery_queue(purge=True)  # what an interrupted run left
        workers = {"Celery worker (main process and its 2 pool children)": (celery_worker(2, "burst"), "celery")}
    else:
        rq = [sys.executable, "manage.py", "rqworker", "default"]
        workers = {"worker A (and its work horses)": (rq, "a"), "worker B (and its work horses)": (rq, "b")}
    machine_busy = lambda: sum(psutil.cpu_times()) - psutil.cpu_times().idle - psutil.cpu_times().iowait  # noqa: E731
    with contextlib.ExitStack() as stack:
        smtp = stack.enter_context(running(sink, env, "burst-smtp"))
        port_a, daphne_a = stack.enter_context(daphne(env))
        port_b, daphne_b = stack.enter_context(daphne(env))
        worker_pids = {
            name: stack.enter_context(running(command, env, f"burst-worker-{log}")).pid
            for name, (command, log) in workers.items()
        }
        wait_for_port(smtp_port)
        if backend == "celery":
            assert celery_queue(), "the Celery worker did not start"
        time.sleep(2)  # the workers are up and waiting
        processes = {
            "daphne A": daphne_a.pid,
            "daphne B": daphne_b.pid,
            **worker_pids,
            "SMTP sink": smtp.pid,
            "load generator (this script)": os.getpid(),
            **servers(rabbitmq=backend == "celery"),
        }

        def cpu_now() -> dict[str, float]:
            cpu = {}
            for name, pid in processes.items():
                process = psutil.Process(pid)
                if pid == os.getpid():  # this script: its own threads only, not the servers it started
                    cpu[name] = sum(process.cpu_times()[:2])
                    continue
                family = [process.cpu_times()] + [child.cpu_times() for child in process.children(recursive=True)]
                # Live children, plus those already reaped (their times are in the parent's children_*).
                cpu[name] = sum(t.user + t.system for t in family) + family[0].children_user + family[0].children_system
            return cpu | {"machine": machine_busy()}

        cpu_before: dict[str, float] = {}
        spies: list[subprocess.Popen] = []

        def on_start() -> None:
            cpu_before.update(cpu_now())
            if os.environ.get("BENCH_BURST_SPY"):
                spies.extend(
                    spy(pid, OUT / f"spy-burst-{backend}-daphne-{name}.txt")
                    for name, pid in (("A", daphne_a.pid), ("B", daphne_b.pid))
                )

        async def run() -> dict:
            outcome = await burst([port_a, port_b], users, tabs, on_start)
            ids = [body["id"] for _, _, _, body in outcome["launches"] if body.get("id")]
            outcome["tasks"] = await asyncio.to_thread(await_finished, ids)
            for process in spies:
                process.send_signal(signal.SIGINT)  # py-spy writes its file and exits
                process.wait(60)
            await asyncio.sleep(0.5)  # the last pushes arrive
            outcome["cpu"] = {name: value - cpu_before[name] for name, value in cpu_now().items()}
            for reader in outcome["readers"]:
                reader.cancel()
            await close_sockets(outcome["sockets"])
            return outcome

        result = asyncio.run(run())
        result["noop seconds"] = (celery_noop_floor if backend == "celery" else noop_floor)(noop_jobs)
    return result


def main() -> None:
    args = start(__doc__, database="postgres")
    from django.contrib.auth import get_user_model

    from live_tasks.models import Task
    from posts.services import posts_seed

    n_users, tabs, posts, noop_jobs = (
        (SMOKE_USERS, SMOKE_TABS, SMOKE_POSTS, SMOKE_NOOP_JOBS) if args.smoke else (USERS, TABS, POSTS, NOOP_JOBS)
    )
    users = users_with_sessions("bench-burst-", n_users)
    for user in get_user_model().objects.filter(pk__in=[pk for pk, _ in users]):
        posts_seed(author=user, count=posts)
    results = {}
    for backend in BACKENDS:  # the same users, posts and pages, one backend after the other
        results[backend] = measure(backend, users, tabs, noop_jobs)
        Task.objects.filter(user_id__in=[pk for pk, _ in users]).delete()  # the next burst's pages start alike
        flush_redis()
    per_post = writer_floor(users[0][0])

    burst_rows, cpu_used, floor_rows, targets = [], {}, [], []
    for backend, label in BACKENDS.items():
        result = results[backend]
        launches, tasks = result["launches"], result["tasks"]
        first_sent, last_answered = min(s for s, *_ in launches), max(a for _, a, *_ in launches)
        by_id = {str(task.id): task for task in tasks}
        launch_ms = [1000 * (answered - sent) for sent, answered, _, _ in launches]
        push_during: list[float] = []
        push_after: list[float] = []
        for task_id, reads in result["finals"].items():
            finished = by_id[task_id].finished_at.timestamp()
            for read_at in reads:
                (push_during if read_at <= last_answered else push_after).append(1000 * (read_at - finished))
        sent_at = {body["id"]: sent for sent, _, _, body in launches if body.get("id")}
        to_running = [1000 * (at - sent_at[task_id]) for task_id, at in result["running"].items() if task_id in sent_at]
        makespan = max(task.finished_at.timestamp() for task in tasks) - first_sent
        exports, total_posts = len(tasks), posts * len(tasks)
        noop_seconds = result["noop seconds"]
        floor_makespan = (total_posts * per_post + exports * noop_seconds / noop_jobs * 2) / 2
        statuses = Counter(status for _, _, status, _ in launches)
        cpu_used[backend] = result["cpu"]
        listed = sum(value for name, value in result["cpu"].items() if name != "machine")
        row = {
            "queue": label,
            "exports": exports,
            "sockets": len([ws for ws in result["sockets"] if ws]),
            "launch statuses": ", ".join(f"{n} × {s}" for s, n in sorted(statuses.items())),
            "succeeded": sum(task.status == "succeeded" for task in tasks),
            "launch p50 ms": percentile(launch_ms, 50),
            "launch p99 ms": percentile(launch_ms, 99),
            "final push p50 ms (all)": percentile(push_during + push_after, 50),
            "final push p99 ms (all)": percentile(push_during + push_after, 99),
            "final push p99 ms (while launches in flight)": percentile(push_during, 99),
            "final push p99 ms (after)": percentile(push_after, 99),
            "final pushes read": len(push_during) + len(push_after),
            "launch → first running p50 ms": percentile(to_running, 50),
            "makespan s": makespan,
            "exports/s": exports / makespan,
            "floor makespan s": floor_makespan,
            "makespan ÷ floor": makespan / floor_makespan,
            "CPU ms per export (every process listed)": 1000 * listed / exports,
            "load generator loop lag p99 ms": percentile(result["lags"], 99),
            "load generator loop lag max ms": max(result["lags"], default=None),
            "socket errors": sum(result["errors"].values()),
        }
        burst_rows.append(row)
        cpu_used[backend]["the rest of the machine (other work)"] = result["cpu"].pop("machine") - listed
        workers = "project's worker class, 2 workers" if backend == "rq" else "acked late, 1 worker × 2 pool children"
        floor_rows.append(
            {
                "floor": f"{label} no-op jobs, {workers}",
                "per job ms": 1000 * noop_seconds / noop_jobs * 2,
                "jobs/s": noop_jobs / noop_seconds,
            }
        )
        # Issue #22's targets: the makespan against its floor of the same run, latencies absolute.
        suffix = "" if backend == "rq" else " (Celery)"
        targets += [
            target(f"final-state push p99 ms, all 1,000 sockets{suffix}", row["final push p99 ms (all)"], "≤", 150),
            target(f"launch p99 ms{suffix}", row["launch p99 ms"], "≤", 500),
            target(f"makespan ÷ floor makespan{suffix}", row["makespan ÷ floor"], "≤", 1.3),
        ]
    floor_rows.append(
        {"floor": f"the streaming writer alone, {posts:,} posts", "per job ms": 1000 * per_post * posts, "jobs/s": None}
    )
    for cpu in cpu_used.values():  # the job processes of each, whichever queue runs them
        cpu["workers, total"] = sum(value for name, value in cpu.items() if "worker" in name)
    order = ["daphne", "worker ", "Celery", "workers", "SMTP", "load", "PostgreSQL", "Redis", "RabbitMQ", "the rest"]
    names = list(dict.fromkeys(name for cpu in cpu_used.values() for name in cpu))
    names.sort(key=lambda name: next(n for n, prefix in enumerate(order) if name.startswith(prefix)))
    cpu_rows = [
        {"process": name, **{f"{label} CPU s": cpu_used[backend].get(name) for backend, label in BACKENDS.items()}}
        for name in names
    ]
    tables = {
        "": burst_rows,
        "CPU seconds of each process during the burst:": cpu_rows,
        "Floors, measured in the same run:": floor_rows,
    }
    save(args, "burst", __doc__, tables, targets)


if __name__ == "__main__":
    main()

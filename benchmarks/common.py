"""What the benchmarks share: their own environment (databases bench*, Redis database 12), users
with real sessions, WebSocket clients, peak RSS, and saving a benchmark's figures as JSON."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import hashlib
import json
import math
import operator
import os
import platform
import resource
import secrets
import subprocess
import sys
import time
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(os.environ.get("BENCH_OUTPUT_DIR", ROOT / "benchmarks-output"))  # databases, media, logs
# The benchmarks' own Redis database, the only one they flush: another for runs of two checkouts at once.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/")
# The Celery queue of the overhead and burst benchmarks' Celery side: no other worker on the broker reads it.
CELERY_QUEUE = "live-tasks-bench"
MIB = 1024 * 1024
PACKAGES = [
    "django",
    "channels",
    "channels-redis",
    "daphne",
    "django-rq",
    "rq",
    "redis",
    "psycopg",
    "orjson",
    "websockets",
    "celery",
    "kombu",
]
_STARTED: dict[str, Any] = {}


def start(doc: str, database: str) -> argparse.Namespace:
    """Parse --smoke/--database, point this process and its children at the benchmark stores, migrate."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: only checks that it runs")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default=database)
    args = parser.parse_args()
    _STARTED.update(wall=time.monotonic(), load=os.getloadavg()[0], cpu=_cpu())
    # Per checkout: other checkouts on this machine (other branches, other migrations) have their own.
    name = f"bench_{'smoke_' if args.smoke else ''}{hashlib.sha256(str(ROOT).encode()).hexdigest()[:6]}"
    # A smoke run starts from an empty database: one left by another revision may not migrate.
    if args.database == "postgres":
        import psycopg

        with psycopg.connect(PG_URL.replace("postgres:", "postgresql:") + "postgres", autocommit=True) as conn:
            if args.smoke:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                conn.execute(f"CREATE DATABASE {name}")
    elif args.smoke:
        for suffix in ("", "-wal", "-shm"):
            (OUT / f"{name}.sqlite3{suffix}").unlink(missing_ok=True)
    for key in ("DATABASE_POOL", "REDIS_SENTINELS", "DEBUG"):  # a developer's settings stay out
        os.environ.pop(key, None)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="benchmarks.settings",
        DATABASE_URL=PG_URL + name if args.database == "postgres" else f"sqlite:///{OUT / name}.sqlite3",
        REDIS_URL=REDIS_URL,
        CHANNEL_LAYER_REDIS_URL=REDIS_URL,
        CHANNEL_LAYER_PREFIX=f"bench-{os.getpid()}",  # pub/sub channels are server-wide
        MEDIA_ROOT=str(OUT / "media"),
        EMAIL_URL="dummymail://",
        SECRET_KEY="benchmarks-only",
        LOG_LEVEL="WARNING",
        TEST_OUTPUT_DIR=str(OUT / "logs"),  # where tests.processes writes its children's logs
        PYTHONUNBUFFERED="1",
        # A benchmark user may launch many tasks in a row (the per-user launch limit is tested, not measured).
        TASK_LAUNCH_LIMIT="1000000",
    )
    OUT.mkdir(parents=True, exist_ok=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # thousands of sockets, here and in children
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    if args.database == "postgres":
        from django.db import connection

        # The server here runs without autovacuum, and the import benchmark deletes and re-creates
        # millions of posts: their dead rows made the next benchmark's exports 7× slower (run R).
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE)")
    flush_redis()
    return args


def celery_worker(concurrency: int, name: str) -> list[str]:
    """A Celery worker of benchmarks/celery_app.py on the benchmarks' queue: a prefork pool of
    `concurrency` children, each taking one job at a time (as the library's docs run it)."""
    return [
        *[sys.executable, "-m", "celery", "-A", "benchmarks.celery_app", "worker", "-Q", CELERY_QUEUE],
        *["--pool", "prefork", "--concurrency", str(concurrency), "-O", "fair", "--without-gossip"],
        *["--without-mingle", "--loglevel", "INFO", "--hostname", f"{name}-{os.getpid()}@%h"],
    ]


def celery_env(env: dict[str, str]) -> dict[str, str]:
    """A child's environment with the tasks' jobs on Celery (benchmarks/settings.py)."""
    return dict(env, BENCH_QUEUE_BACKEND="celery")


def celery_queue(purge: bool = False, timeout: float = 60) -> int:
    """Wait until a worker consumes the benchmarks' Celery queue (declaring it first); with `purge`,
    drop what an interrupted run left in it. Returns the number of consumers."""
    from kombu.entity import Exchange, Queue

    from benchmarks.celery_app import app

    name, deadline = CELERY_QUEUE, time.monotonic() + timeout
    with app.connection_for_write() as connection:
        queue = Queue(name, Exchange(name), routing_key=name, channel=connection.default_channel)
        queue.declare()
        if purge:
            queue.purge()
            return 0
        while True:
            _, _, consumers = connection.default_channel.queue_declare(queue=name, passive=True)
            if consumers or time.monotonic() > deadline:
                return consumers
            time.sleep(0.2)


def postgres_reachable() -> bool:
    import psycopg

    try:
        psycopg.connect(PG_URL.replace("postgres:", "postgresql:") + "postgres", connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


def flush_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    assert client.connection_pool.connection_kwargs["db"] != 0  # never the project's default database
    client.flushdb()
    client.close()


def users_with_sessions(prefix: str, count: int) -> list[tuple[int, str]]:
    """`count` fresh users, each with the session that django.contrib.auth.login() would store."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    User = get_user_model()
    delete_users(prefix)
    password = make_password(secrets.token_urlsafe())
    User.objects.bulk_create((User(username=f"{prefix}{n}", password=password) for n in range(count)), batch_size=1000)
    users = User.objects.filter(username__startswith=prefix).order_by("id")
    backend, expire = "django.contrib.auth.backends.ModelBackend", timezone.now() + datetime.timedelta(days=1)
    sessions = [
        Session(
            session_key=secrets.token_hex(16),
            session_data=SessionStore().encode(
                {SESSION_KEY: str(u.pk), BACKEND_SESSION_KEY: backend, HASH_SESSION_KEY: u.get_session_auth_hash()}
            ),
            expire_date=expire,
        )
        for u in users
    ]
    Session.objects.bulk_create(sessions, batch_size=1000)
    return [(u.pk, s.session_key) for u, s in zip(users, sessions, strict=True)]


def delete_users(prefix: str) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.models import Session

    get_user_model().objects.filter(username__startswith=prefix).delete()  # and their tasks
    Session.objects.all().delete()  # the benchmark database holds benchmark sessions only


async def connect_socket(port: int, path: str, key: str):
    """A socket signed in with session `key`; and the snapshot, which the project's consumer sends first."""
    from websockets.asyncio.client import connect
    from websockets.typing import Origin

    ws = await connect(
        f"ws://127.0.0.1:{port}{path}",
        origin=Origin(f"http://127.0.0.1:{port}"),
        additional_headers={"Cookie": f"sessionid={key}"},
        proxy=None,
        open_timeout=30,
        ping_interval=None,
        max_queue=None,
    )
    if path != "/ws/notifications/":
        return ws, None
    snapshot = json.loads(await asyncio.wait_for(ws.recv(), 30))
    assert snapshot["type"] == "snapshot", snapshot
    return ws, snapshot


async def open_sockets(port: int, path: str, keys: list[str], at_once: int) -> tuple[list, Counter, float]:
    """One socket per session key (None where it failed), `at_once` connecting at a time (0: all)."""
    gate, errors = asyncio.Semaphore(at_once or len(keys) or 1), Counter[str]()

    async def one(key: str):
        async with gate:
            try:
                return (await connect_socket(port, path, key))[0]
            except Exception as exc:
                errors[type(exc).__name__] += 1

    started = time.monotonic()
    sockets = await asyncio.gather(*(one(key) for key in keys))
    return sockets, errors, time.monotonic() - started


async def close_sockets(sockets: list) -> None:
    await asyncio.wait_for(asyncio.gather(*(ws.close() for ws in sockets if ws), return_exceptions=True), 60)


# A child's peak RSS, as its parent's wait4() sees it, starts at the size of the process it was
# forked from: a child of this (big) process would never look smaller than it. A small wrapper
# process reports the largest of the command and every descendant it waited for instead.
_PEAK_RSS = (
    "import resource as r, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
    "print(code, r.getrusage(r.RUSAGE_CHILDREN).ru_maxrss)"
)


def run_peak_rss(args: list[str], timeout: float = 900) -> tuple[list[str], float]:
    """Run a command to completion; return its output lines and the peak RSS of its tree, in MiB."""
    proc = subprocess.run([sys.executable, "-c", _PEAK_RSS, *args], capture_output=True, text=True, timeout=timeout)
    *lines, last = proc.stdout.splitlines()
    returncode, peak_kib = map(int, last.split())
    if returncode:
        raise RuntimeError(f"{args} exited with {returncode}:\n{proc.stderr[-3000:]}")
    return lines, peak_kib / 1024


def cpu_seconds(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest rank, like the old report's; None for no values."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * pct / 100)) - 1] if ordered else None


def save(args: argparse.Namespace, name: str, doc: str, tables: dict, targets: list, series: dict | None = None):
    """Print the tables and write results/<name>.json: figures, targets, the run and the machine."""
    from benchmarks.write import markdown_table, results_dir

    for caption, rows in tables.items():
        print(f"\n{caption}\n\n{markdown_table(rows)}" if caption else "\n" + markdown_table(rows), flush=True)
    record = {
        "name": name,
        "script": os.path.relpath(sys.modules["__main__"].__file__ or "", ROOT),
        "title": doc.split("\n")[0].rstrip("."),
        "about": " ".join(doc.split("\n\n")[1].split()),
        "tables": tables,
        "targets": targets,
        "series": series or {},
        "run": _run(),
        "machine": _machine(),
    }
    path = results_dir(args.smoke) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"\nWritten: {os.path.relpath(path, ROOT)}", flush=True)


def target(figure: str, value: float | None, op: str, limit: float) -> dict:
    """A target of the product beside its figure, as data: `op` is one of ≤ ≥ <."""
    met = value is not None and {"≤": operator.le, "≥": operator.ge, "<": operator.lt}[op](value, limit)
    return {"figure": figure, "value": value, "target": f"{op} {limit:,g}", "met": met}


def _cpu() -> tuple[float, float]:
    """Busy CPU seconds so far: of the whole machine, and of this process and the children it waited for."""
    import psutil

    machine, me = psutil.cpu_times(), psutil.Process().cpu_times()
    not_busy = machine.idle + machine.iowait + machine.guest + machine.guest_nice  # guest time is in user too
    return sum(machine) - not_busy, me.user + me.system + me.children_user + me.children_system


def _run() -> dict:
    def git(*cmd: str) -> str:
        return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    outputs = [":!BENCHMARKS.md", ":!benchmarks/results", ":!docs"]  # a run's own outputs are no change
    dirty, (machine, own) = git("status", "--porcelain", "--untracked-files=no", "--", ".", *outputs), _cpu()
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git("rev-parse", "--short", "HEAD") + (" + uncommitted changes" if dirty else ""),
        "seconds": round(time.monotonic() - _STARTED["wall"]),
        "load average before / after": f"{_STARTED['load']:.2f} / {os.getloadavg()[0]:.2f}",
        # Other engineers' work, and the Redis and PostgreSQL servers working for this run.
        "other processes' CPU s": round((machine - _STARTED["cpu"][0]) - (own - _STARTED["cpu"][1]), 1),
    }


def _machine() -> dict:
    import psutil
    import redis
    from django.db import connection

    with open("/proc/cpuinfo") as fh:
        cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "unknown")
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version" if connection.vendor == "postgresql" else "SELECT sqlite_version()")
        database = f"{connection.display_name} {cursor.fetchone()[0]}"
    return {
        "cpu": f"{os.cpu_count()} cores, {cpu}; {psutil.virtual_memory().total / 2**30:.1f} GiB memory",
        "kernel": f"Linux {platform.release()}",
        "python": platform.python_version(),
        "database": database,
        "redis": redis.Redis.from_url(REDIS_URL).info("server")["redis_version"],
        "packages": ", ".join(f"{name} {metadata.version(name)}" for name in PACKAGES),
    }

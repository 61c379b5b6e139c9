"""Shared helpers: the benchmark environment, child processes, databases, users and figures.

Nothing here imports Django at module level: the orchestrator (benchmarks/__main__.py) never sets
Django up; each benchmark driver is its own process with its own DATABASE_URL.
"""

from __future__ import annotations

import json
import math
import os
import resource
import secrets
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
RESULT_MARK = "BENCH_RESULT "
# The benchmarks' own Redis database: the only one they ever flush.
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
BENCH_REDIS_DB = 12
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
MIB = 1024 * 1024


def smoke() -> bool:
    return os.environ.get("BENCH_SMOKE") == "1"


def output_dir() -> Path:
    out = Path(os.environ.get("BENCH_OUTPUT_DIR", ROOT / "benchmarks-output"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def pg_database_name() -> str:
    return "bench_smoke" if smoke() else "bench"


def database_url(db: str) -> str:
    if db == "sqlite":
        name = "bench-smoke.sqlite3" if smoke() else "bench.sqlite3"
        return f"sqlite:///{output_dir() / name}"
    if db == "postgres":
        admin = urlparse(PG_ADMIN_URL)
        return admin._replace(path=f"/{pg_database_name()}").geturl()
    raise ValueError(db)


def bench_env(db: str = "sqlite", settings: str = "benchmarks.settings", **extra: str) -> dict[str, str]:
    """The environment of every benchmark process: benchmark settings on one database."""
    env = dict(os.environ)
    # A developer's or the test run's settings must not leak into the benchmark processes.
    for key in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "MEDIA_ROOT", "EMAIL_URL"):
        env.pop(key, None)
    env.update(
        DJANGO_SETTINGS_MODULE=settings,
        PYTHONUNBUFFERED="1",
        BENCH_OUTPUT_DIR=str(output_dir()),
        DATABASE_URL=database_url(db),
        REDIS_URL=BENCH_REDIS_URL,
        CHANNEL_LAYER_REDIS_URL=BENCH_REDIS_URL,
        # Pub/sub channels are global to the Redis server: one prefix per benchmark run.
        CHANNEL_LAYER_PREFIX=os.environ.get("CHANNEL_LAYER_PREFIX", f"bench-{os.getpid()}"),
        MEDIA_ROOT=str(output_dir() / "media"),
        EMAIL_URL=os.environ.get("BENCH_EMAIL_URL", "dummymail://"),
    )
    env.update(extra)
    return env


def setup_django() -> None:
    """For driver processes started with bench_env(): configure Django from the environment."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    import django

    django.setup()


def raise_open_files_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def redis_bench():
    """A client on the benchmarks' Redis database; refuses to exist on any other database."""
    import redis

    client = redis.Redis.from_url(BENCH_REDIS_URL)
    assert client.connection_pool.connection_kwargs.get("db") == BENCH_REDIS_DB, BENCH_REDIS_URL
    return client


def flush_bench_redis() -> None:
    client = redis_bench()
    client.flushdb()
    client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args} exited with {proc.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def log_path(name: str) -> Path:
    logs = output_dir() / "logs"
    logs.mkdir(exist_ok=True)
    return logs / f"{name}.log"


def stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def daphne(env: dict[str, str], app: str = "project.asgi:application", name: str = "daphne"):
    """One daphne process, as in the Procfile, with the open-files limit raised to the hard limit."""
    port = free_port()
    args = [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), app]
    with open(log_path(f"{name}-{port}"), "w") as log:
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=raise_open_files_limit
        )
        try:
            wait_for_port(port, proc=proc)
            yield port, proc
        finally:
            stop(proc)


def _run_module(module: str, args, env: dict[str, str], name: str, timeout: float) -> subprocess.CompletedProcess:
    """`python -m module args` to completion: stdout captured, stderr to the log file `name`."""
    with open(log_path(name), "w") as log:
        return subprocess.run(
            [PYTHON, "-m", module, *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            timeout=timeout,
        )


def run_measured(args: list[str], env: dict[str, str], name: str, timeout: float = 600) -> dict:
    """Run a child to completion; return its exit code, stdout, wall time and peak RSS (bytes).

    The peak RSS is that of the child or of any descendant it waited for (benchmarks/peak_rss.py
    explains why it goes through a wrapper): for `rqworker --burst`, the forked work horse.
    """
    from benchmarks.peak_rss import MARK

    started = time.monotonic()
    proc = _run_module("benchmarks.peak_rss", args, env, name, timeout)
    wall = time.monotonic() - started
    peak = [int(line[len(MARK) :]) for line in proc.stdout.splitlines() if line.startswith(MARK)]
    return {
        "returncode": proc.returncode,
        "stdout": proc.stdout,
        "wall": wall,
        "peak_rss": peak[-1] if peak else None,
        "result": parse_result(proc.stdout),
    }


def run_driver(module: str, env: dict[str, str], args: list[str] = (), timeout: float = 900) -> dict:
    """Run one benchmark driver (`python -m benchmarks.X`) and return the result it printed."""
    name = module.rsplit(".", 1)[-1] + "-" + env["DATABASE_URL"].split(":", 1)[0]
    proc = _run_module(module, args, env, name, timeout)
    result = parse_result(proc.stdout)
    if proc.returncode != 0 or result is None:
        tail = log_path(name).read_text()[-3000:]
        raise RuntimeError(f"{module} failed (exit {proc.returncode}); log {log_path(name)}:\n{tail}")
    return result


def emit_result(result: dict) -> None:
    print(RESULT_MARK + json.dumps(result), flush=True)


def parse_result(stdout: str) -> dict | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK) :])
    return None


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


# --- Users and sessions (drivers only: Django must be set up) --------------------------------------


def create_users_with_sessions(prefix: str, count: int) -> list[tuple[int, str]]:
    """`count` fresh users named `<prefix><n>`, each with a real session in the session store.

    Returns (user id, session key) pairs. Users are bulk-created with one password hash, and each
    session is what django.contrib.auth.login() would have stored for that user.
    """
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    User = get_user_model()
    delete_users(prefix)
    password = make_password(secrets.token_urlsafe(16))
    User.objects.bulk_create(
        (User(username=f"{prefix}{n}", email=f"{prefix}{n}@example.com", password=password) for n in range(count)),
        batch_size=1000,
    )
    users = list(User.objects.filter(username__startswith=prefix).order_by("id"))
    store = SessionStore()
    expire = timezone.now() + timezone.timedelta(days=1)
    backend = "django.contrib.auth.backends.ModelBackend"
    sessions = []
    for user in users:
        key = secrets.token_hex(16)  # 32 characters of [0-9a-f], as Django's own keys
        data = {SESSION_KEY: str(user.pk), BACKEND_SESSION_KEY: backend, HASH_SESSION_KEY: user.get_session_auth_hash()}
        sessions.append(Session(session_key=key, session_data=store.encode(data), expire_date=expire))
    Session.objects.bulk_create(sessions, batch_size=1000)
    return [(user.pk, s.session_key) for user, s in zip(users, sessions, strict=True)]


def clear_sessions() -> None:
    """Drop every session of the benchmark database (it holds benchmark users only)."""
    from django.contrib.sessions.models import Session

    Session.objects.all().delete()


def delete_users(prefix: str) -> None:
    from django.contrib.auth import get_user_model
    from exports.models import Task

    Task.objects.filter(user__username__startswith=prefix).delete()
    get_user_model().objects.filter(username__startswith=prefix).delete()


def rss_of(pid: int) -> int:
    import psutil

    return psutil.Process(pid).memory_info().rss


def prepare_database(db: str) -> None:
    """Create the benchmarks' PostgreSQL database if missing, then migrate (idempotent)."""
    if db == "postgres":
        import psycopg

        with psycopg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [pg_database_name()]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{pg_database_name()}"')
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=bench_env(db),
        check=True,
        timeout=300,
    )


class LineChild:
    """A child process driven by one command line on stdin, answering one JSON line on stdout."""

    def __init__(self, args: list[str], env: dict[str, str], name: str) -> None:
        import queue
        import threading

        self._log = open(log_path(name), "w")  # noqa: SIM115 -- closed in close()
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True
        )
        self._lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            for line in self.proc.stdout:
                self._lines.put(line)
            self._lines.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def read(self, timeout: float) -> dict:
        import queue

        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"{self.proc.args[:4]} gave no answer within {timeout}s") from None
        if line is None:
            raise RuntimeError(f"{self.proc.args[:4]} exited with {self.proc.wait()}; see {self._log.name}")
        return json.loads(line)

    def ask(self, command: str, timeout: float = 120) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.read(timeout)

    def close(self) -> None:
        stop(self.proc)
        self._log.close()

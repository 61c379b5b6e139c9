"""What the library's tests (and the site's, which import them) need besides pytest's fixtures:
users and tasks, a live page, and the real programs (`rqworker`, `task_scheduler`, `daphne`) run
as children on the test's own database, Redis database and settings."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import factory
import psutil
import pytest
from channels.routing import get_default_application
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

from live_tasks.conf import live_settings
from live_tasks.models import Task

from .testapp.kinds import TEST_STEPS

# The folder that holds the tests' top-level package: children run there, so they import it too.
ROOT = Path(__file__).resolve().parents[len((__package__ or "tests.library").split("."))]

# A generous ceiling for waiting on an event: tests assert their bounds on the measured time.
CEILING = 120
# docs/operations.md: with the default settings (heartbeat 5 s, lost after 20 s, reconciled every
# 10 s) a lost worker's task ends within 30 s of the kill; the margin covers a loaded machine.
WORKER_LOST_BOUND_SECONDS = 40
# A work horse is killed by the kernel the moment its worker dies (PR_SET_PDEATHSIG); the margin is
# for a loaded machine to deliver the signal and the test to see it.
HORSE_GONE_BOUND_SECONDS = 5


# --- Users and tasks ----------------------------------------------------------------------------
PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class StaffFactory(UserFactory):
    """A staff account with the task permissions named (codenames of live_tasks.Task: "view_task",
    "cancel_task", "retry_task"); by default it may watch every task and nothing more."""

    is_staff = True

    @factory.post_generation
    def permissions(obj, create, extracted, **kwargs):
        if create:
            codenames = ["view_task"] if extracted is None else extracted
            obj.user_permissions.add(
                *Permission.objects.filter(content_type__app_label="live_tasks", codename__in=codenames)
            )


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Task

    user = factory.SubFactory(UserFactory)
    kind = TEST_STEPS


def signed_in_client(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def session_cookie_for(user) -> str:
    """A new session of `user`, as the value of the `sessionid` cookie (for sockets, daphne, a browser)."""
    return signed_in_client(user).cookies[settings.SESSION_COOKIE_NAME].value


# --- A live page --------------------------------------------------------------------------------
ORIGIN = b"http://127.0.0.1:8000"


class LiveFeed:
    """A live page in a test: a real WebSocket client on the project's whole ASGI stack (session
    authentication, the Origin check), collecting what it is pushed.

    It runs in its own thread and event loop, so the test's main thread can meanwhile run jobs
    synchronously. Needs committed data (django_db(transaction=True)): the consumer reads the
    database from another thread.
    """

    def __init__(self, user, path: str | None = None, cookie: str | None = None) -> None:
        self.cookie = cookie or session_cookie_for(user)
        self.path = path or live_settings.WEBSOCKET_PATH
        self.messages: list[dict] = []
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.error: BaseException | None = None

    async def _run(self) -> None:
        communicator = WebsocketCommunicator(
            get_default_application(),
            self.path,
            headers=[
                (b"host", b"127.0.0.1:8000"),
                (b"cookie", f"{settings.SESSION_COOKIE_NAME}={self.cookie}".encode()),
                (b"origin", ORIGIN),
            ],
        )
        try:
            connected, _ = await communicator.connect()
            assert connected
            self._connected.set()
            while not self._stop.is_set():
                # Not receive_from(timeout=...): on a timeout it cancels the application.
                try:
                    event = await asyncio.wait_for(communicator.output_queue.get(), 0.1)
                except TimeoutError:
                    continue
                assert event["type"] == "websocket.send", event
                self.messages.append(json.loads(event["text"]))
        except BaseException as exc:  # surfaced to the test by __exit__
            self.error = exc
            self._connected.set()
        finally:
            await communicator.disconnect()

    def task_messages(self, task_id) -> list[dict]:
        return [m["task"] for m in self.messages if m["type"] == "task" and m["task"]["id"] == str(task_id)]

    def wait_for(self, predicate, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(predicate(m) for m in list(self.messages)):
                return
            time.sleep(0.02)
        raise AssertionError(f"no matching message within {timeout}s; got {self.messages}")

    def __enter__(self) -> LiveFeed:
        self._thread.start()
        assert self._connected.wait(10), "the WebSocket did not connect"
        if self.error:
            raise self.error
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(0.2)  # let the last published messages arrive
        self._stop.set()
        self._thread.join(10)
        if self.error:
            raise self.error


# --- A real browser ----------------------------------------------------------------------------
# Debian's Chromium (`make browser`), driven by Playwright: its own browser download cannot work offline.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def launch_chromium(playwright):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install it with `bash scripts/ensure_chromium.sh` (or `make browser`).")
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def off_loop(fn, *args, **kwargs):
    """Call `fn` (which uses the ORM) in another thread and return its result.

    Sync Playwright runs an event loop in the test's thread, and Django refuses ORM calls from a
    thread with a running loop (SynchronousOnlyOperation).
    """

    def call():
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result()


# --- The real programs --------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: these settings, on the *test* database."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", TESTS_CHILD_PROCESS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    settings_dict = connection.settings_dict
    if settings_dict["ENGINE"].endswith("sqlite3"):
        env["DATABASE_URL"] = f"sqlite:///{settings_dict['NAME']}"
    else:
        user, host, port = settings_dict["USER"], settings_dict["HOST"], settings_dict["PORT"]
        password = f":{settings_dict['PASSWORD']}" if settings_dict["PASSWORD"] else ""
        env["DATABASE_URL"] = f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"
    env.update(extra)
    return env


def wait_for_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


@contextmanager
def running(args: list[str], env: dict[str, str], log_name: str, new_session: bool = False):
    """Run a long-lived child (daphne, a worker) for the duration of a `with` block."""
    out_dir = Path(env.get("TEST_OUTPUT_DIR", ROOT / "test-output"))
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / f"{log_name}.log", "w") as log:
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=new_session
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def django_admin(*args: str) -> list[str]:
    """A management command of the settings in DJANGO_SETTINGS_MODULE (as manage.py runs it)."""
    return [sys.executable, "-m", "django", *args]


@contextmanager
def daphne(env: dict[str, str], port: int | None = None, app: str | None = None):
    """daphne serving `app`, by default the project's ASGI_APPLICATION."""
    port = port or free_port()
    app = app or ":".join(settings.ASGI_APPLICATION.rsplit(".", 1))
    args = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), app]
    with running(args, env, f"daphne-{port}") as proc:
        wait_for_port(port)
        yield port, proc


def worker_command(name: str) -> list[str]:
    """The worker of the session's queue backend: `rqworker default`, or a Celery worker of the test
    project's app with one prefork pool process (one job at a time, as an RQ worker runs them)."""
    if live_settings.QUEUE_BACKEND != "celery":
        return django_admin("rqworker", "default")
    app = f"{__package__ or 'tests.library'}.celery_app"
    return [
        *[sys.executable, "-m", "celery", "-A", app, "worker", "-Q", live_settings.QUEUE],
        *["--pool", "prefork", "--concurrency", "1", "-O", "fair", "--without-gossip", "--without-mingle"],
        *["--loglevel", "INFO", "--hostname", f"{name}-{os.getpid()}@%h"],
    ]


@contextmanager
def worker(env: dict[str, str], name: str = "worker"):
    """The session's worker (worker_command) in its own process group, so a test can kill it whole."""
    with running(worker_command(name), env, name, new_session=True) as proc:
        yield proc


def _broker_queue(channel: Any) -> Any:
    """The session's Celery queue on the broker (declared, as the worker declares it), on `channel`."""
    from kombu.entity import Exchange, Queue

    name = live_settings.QUEUE
    queue = Queue(name, Exchange(name), routing_key=name, channel=channel)
    queue.declare()
    return queue


def run_queued_jobs() -> dict[str, Any]:
    """Run every job waiting in the queue, here, one after the other, and return once it is empty:
    RQ's SimpleWorker in burst mode; on Celery each message is taken from the broker and its task
    applied in this process, then acknowledged.

    Returns what each job that was waiting returned, by task id ("succeeded", "skipped", ...; None
    for a job that raised, which the queue records as failed)."""
    if live_settings.QUEUE_BACKEND != "celery":
        from rq import SimpleWorker
        from rq.job import Job

        from live_tasks.queue.rq import default_queue

        queue = default_queue()
        waiting = queue.job_ids
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        jobs = Job.fetch_many(waiting, connection=queue.connection)
        return {job.id: job.return_value() for job in jobs if job is not None}
    app = celery_app()

    outcomes: dict[str, Any] = {}
    with app.connection_for_read() as connection:
        broker_queue = _broker_queue(connection.default_channel)
        while (message := broker_queue.get(no_ack=False)) is not None:
            args, kwargs, _ = message.decode()
            task_id = message.headers["id"]
            try:
                result = app.tasks[message.headers["task"]].apply(args=args, kwargs=kwargs, task_id=task_id)
            except SystemExit:  # Celery lets it through: in a worker its pool process exits (the job failed the row)
                outcomes[task_id] = None
            else:
                outcomes[task_id] = result.result if result.successful() else None
            message.ack()
    return outcomes


def celery_app() -> Any:
    """The Celery app that the library's task is sent with: the session's (tests/library/celery_app.py,
    which the test app loads on Celery), or the site's in the site's tests. Never a new app: creating
    one makes it Celery's current app, under a test that has patched a task of the other."""
    from live_tasks.queue.celery import run_task

    return run_task.app


@dataclass(frozen=True)
class QueuedJob:
    """A job waiting in the queue, as either backend holds it."""

    id: str
    name: str  # what it runs: the core's job (core_job_name())
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    timeout: float | None  # its time limit (RQ's job timeout, Celery's soft time limit)


def core_job_name() -> str:
    """The name of the core's job on the session's backend: RQ's function, or Celery's task."""
    if live_settings.QUEUE_BACKEND != "celery":
        from live_tasks.queue.rq import TASK_JOB

        return TASK_JOB
    from live_tasks.queue.celery import TASK_NAME

    return TASK_NAME


def queued_jobs() -> list[QueuedJob]:
    """The jobs waiting in the queue, first first, left where they are. On Celery the messages are
    read unacknowledged, then the channel is closed: the broker puts them back as they were."""
    if live_settings.QUEUE_BACKEND != "celery":
        from live_tasks.queue.rq import default_queue

        return [
            QueuedJob(job.id, job.func_name or "", tuple(job.args), dict(job.kwargs), job.timeout)
            for job in default_queue().jobs
        ]
    app = celery_app()

    jobs = []
    with app.connection_for_read() as connection:
        channel = connection.channel()
        try:
            broker_queue = _broker_queue(channel)
            while (message := broker_queue.get(no_ack=False)) is not None:
                args, kwargs, _ = message.decode()
                hard, soft = message.headers.get("timelimit") or (None, None)
                jobs.append(QueuedJob(message.headers["id"], message.headers["task"], tuple(args), kwargs, soft))
        finally:
            channel.close()
    return jobs


def queued_job_ids() -> list[str]:
    return [job.id for job in queued_jobs()]


def purge_queued_jobs() -> None:
    """Empty the queue, as a broker that lost its messages (or a Redis that lost RQ's jobs) would."""
    from live_tasks.queue import queue_backend

    if live_settings.QUEUE_BACKEND != "celery":
        from live_tasks.queue.rq import default_queue

        default_queue().empty()
        return
    app = celery_app()

    with app.connection_for_read() as connection:
        _broker_queue(connection.default_channel).purge()
    backend: Any = queue_backend()
    backend._depth = None  # the safety net's cached queue depth (live_tasks/queue/celery.py) is stale now


def put_job(task_id: str, phase: str, *, heartbeat_age: timedelta | None = None) -> None:
    """A job of the task in `phase` ("waiting", "started", "finished", "failed", "stopped"), as the
    session's queue records it: an RQ job in that status; on Celery a message on the broker for a
    waiting job, else the job record that the task writes in the library's Redis. A started job last
    beat `heartbeat_age` ago (by default, just now)."""
    from live_tasks.queue import task_job_enqueue

    from .testapp.kinds import test_steps

    beat = timezone.now() - (heartbeat_age or timedelta(0))
    if live_settings.QUEUE_BACKEND != "celery":
        from rq.job import JobStatus

        from live_tasks.queue.rq import default_queue, task_job_fetch

        task_job_enqueue(task_id, kind=test_steps)
        job = task_job_fetch(task_id)
        assert job is not None
        if phase == "started":
            job.set_status(JobStatus.STARTED)
            job.heartbeat(beat, ttl=60)
        elif phase != "waiting":
            queue = default_queue()
            queue.remove(job)
            job.set_status(
                {"finished": JobStatus.FINISHED, "failed": JobStatus.FAILED, "stopped": JobStatus.STOPPED}[phase]
            )
            if phase == "failed":  # kept in the failed registry, as RQ keeps a failed job
                queue.failed_job_registry.add(job, ttl=365 * 24 * 3600, exc_string="boom")
        return
    if phase == "waiting":
        task_job_enqueue(task_id, kind=test_steps)
        return
    from live_tasks.queue.celery import _record_write

    _record_write(task_id, phase=phase, lost="0", pid="0", heartbeat=f"{beat.timestamp():.3f}")


@contextmanager
def scheduler(env: dict[str, str], name: str = "scheduler"):
    """`task_scheduler`: the safety net and the periodic upkeep, in its own process."""
    with running(django_admin("task_scheduler"), env, name) as proc:
        yield proc


def wait_until(predicate: Any, timeout: float = CEILING, interval: float = 0.1) -> Any:
    """Poll until `predicate()` is truthy and return its value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"not within {timeout}s"
        time.sleep(interval)
    return value


def wait_for_log(path: Path, text: str, timeout: float = CEILING) -> None:
    """Wait until a child's log holds `text`."""
    wait_until(lambda: text in path.read_text(errors="replace"), timeout)


def wait_for_task(task_id, predicate, timeout: float):
    """Poll the task's row until `predicate(task)` holds; fail after `timeout` seconds (a ceiling, not a bound)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = Task.objects.get(pk=task_id)
        if predicate(task):
            return task
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not get there in {timeout}s: {Task.objects.get(pk=task_id).__dict__}")


def gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE  # dead, not yet reaped by its new parent
    except psutil.NoSuchProcess:
        return True

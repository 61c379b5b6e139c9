"""The library as a Django developer gets it: the wheel built from this checkout, installed into a
fresh virtualenv, in a project made by `django-admin startproject` with only what the README's
"Install in your project" lists (its settings, urls and asgi.py blocks, taken from the README
itself), plus one kind of its own and the view that launches it.

That project is then driven end to end with the real programs of its own virtualenv: daphne,
`manage.py rqworker default` and Redis (database 9). Users sign in through the admin's login
form; the test is the client, over HTTP and the WebSocket at /ws/tasks/: a launch, its live
progress, the result's download (for its owner only), a cancel, and the admin's task list. Last,
`manage.py check` is clean there and names each misconfiguration of the README's "System checks".
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
import venv
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, Request, build_opener

import pytest
import redis
from websockets.sync.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent
# The new project's own settings and virtualenv, not the ones of this test run.
CLEAN_ENV = {
    name: value
    for name, value in os.environ.items()
    if name not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH", "VIRTUAL_ENV", "TESTS_CHILD_PROCESS")
}

PROJECT_REDIS = "redis://127.0.0.1:6379/9"
LIBRARY_TESTS_REDIS = "redis://127.0.0.1:6379/8"
PASSWORD = "pw-for-tests-only"
CEILING = 60  # seconds to wait for any one event: a ceiling, never a measure

# What a developer writes beside the README's blocks: one kind, one view launching it, one URL.
KIND = """
import time

from live_tasks import TaskKind, TaskResult, register
from live_tasks.files import result_store, work_path


def count(task, progress):
    to = task.params["to"]
    with open(work_path(task.id), "w") as out:
        for done in range(1, to + 1):
            time.sleep(0.02)
            out.write(f"{done}\\n")
            progress(done, to, detail=f"{done} of {to}")
    return TaskResult(detail=f"Counted to {to}", file=result_store(task.id, name="count.txt"))


register(TaskKind(name="count", label="Count", run=count))
"""

VIEW = """
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from live_tasks import task_start
from live_tasks.views import task_launch_response


@require_POST
@login_required
def count_start(request):
    start = lambda: task_start(user=request.user, kind="count", params={"to": int(request.POST["to"])})  # noqa: E731
    return task_launch_response(request, start, refused_page=lambda: redirect("live_tasks:list"))
"""

# A `@task` function beside the kind, run by the library's backend (the README's "Already using
# django.tasks?" setting), and a view that enqueues it for the signed-in user.
DJANGO_TASK = """
import time

import live_tasks

try:
    from django.tasks import task
except ImportError:
    from django_tasks import task


@task
def count_words(text):
    words = text.split()
    for done in range(1, len(words) + 1):
        time.sleep(0.1)
        live_tasks.progress(done, len(words), detail=f"{done} of {len(words)} words")
    return {"words": len(words)}
"""

DJANGO_TASK_VIEW = """
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.views.decorators.http import require_POST

import live_tasks

from .tasks import count_words


@require_POST
@login_required
def count_words_start(request):
    with live_tasks.for_user(request.user):
        result = count_words.enqueue(request.POST["text"])
    return JsonResponse({"id": result.id}, status=202)
"""

# ada and bob are staff only so as to sign in through the admin's login form (the project has no
# other): without any permission, the admin shows them no task. root sees every task.
USERS = f"""
from django.contrib.auth.models import User

User.objects.create_user("ada", password="{PASSWORD}", is_staff=True)
User.objects.create_user("bob", password="{PASSWORD}", is_staff=True)
User.objects.create_superuser("root", password="{PASSWORD}")
"""

# Each misconfiguration of the README's "System checks", as a settings module that takes the
# project's settings and changes one thing. E006 and E007 come from an app whose kinds.py
# registers "count" a second time, or a kind whose page is a URL name that does not exist.
MISCONFIGURATIONS = {
    "live_tasks.E001": "RQ = {}",
    "live_tasks.E002": 'RQ_QUEUES = {"low": RQ_QUEUES["default"]}',
    "live_tasks.E003": "CHANNEL_LAYERS = {}",
    "live_tasks.E004": 'CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}',
    "live_tasks.E005": "USE_TZ = False",
    "live_tasks.E006": 'INSTALLED_APPS += ["twice"]',
    "live_tasks.E007": 'INSTALLED_APPS += ["unrouted"]',
    "live_tasks.E008": 'LIVE_TASKS = {"PROGRES_INTERVAL": 1}',
    # Metrics asked for without the [metrics] extra (prometheus-client), which this venv lacks.
    "live_tasks.E009": 'LIVE_TASKS = {"METRICS_TOKEN": "x" * 40}',
    # The django.tasks backend on a queue that the library does not run.
    # ("default" stays: the project's @task is declared on it, and an invalid one fails at import.)
    "live_tasks.E010": 'TASKS["default"]["QUEUES"] = ["default", "low"]',
}
MISFIT_KINDS = {
    "twice": 'register(TaskKind(name="count", label="Count again", run=count))',
    "unrouted": 'register(TaskKind(name="count_paged", label="Paged", run=count, url_name="counter:detail"))',
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-w", str(out), "-q"], check=True)
    (built,) = out.glob("django_live_tasks-*.whl")
    return built


def test_the_wheel_holds_the_library_and_nothing_of_the_site(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    packages = {name.split("/")[0] for name in names if not name.startswith("django_live_tasks-")}
    assert packages == {"live_tasks"}
    for part in (
        "live_tasks/py.typed",
        "live_tasks/migrations/0001_initial.py",
        "live_tasks/static/live_tasks/live.js",
        "live_tasks/templates/live_tasks/base.html",
        "live_tasks/locale/fr/LC_MESSAGES/django.mo",
        "live_tasks/locale/fr/LC_MESSAGES/djangojs.mo",
    ):
        assert part in names


@pytest.mark.slow
@pytest.mark.own_database  # the fresh site's own SQLite file
def test_a_fresh_startproject_site_runs_the_installed_library(wheel, tmp_path):
    python = fresh_virtualenv(wheel, tmp_path / "venv")
    project = fresh_project(python, tmp_path / "p")
    assert "System check identified no issues" in manage(python, project, "check")
    manage(python, project, "migrate", "-v0")
    manage(python, project, "shell", "-c", USERS)

    project_redis = redis.Redis.from_url(PROJECT_REDIS)
    project_redis.flushdb()
    try:
        with serving(python, project) as base:
            ada, bob, root = (signed_in(base, name) for name in ("ada", "bob", "root"))
            with feed(ada) as ada_feed:
                counted = launch_and_follow_to_success(ada, ada_feed)
                download_is_the_owners_alone(ada, bob, counted)
                cancelled = cancel_while_running(ada, ada_feed)
                words = django_task_runs_live(ada, ada_feed)
            admin_lists_every_task(root, ada, [counted, cancelled])
    finally:
        project_redis.flushdb()

    read = manage(python, project, "shell", "-c", f"from counter.tasks import count_words; {GET_RESULT % words}")
    assert "SUCCESSFUL {'words': 5} succeeded" in read, read
    check_names_each_misconfiguration(python, project)


GET_RESULT = "r = count_words.get_result(%r); print(r.status, r.return_value, r.live_status)"


# What the library's own tests need beyond the library, at this repository's pins.
LIBRARY_TEST_TOOLS = ("pytest", "pytest-django", "pytest-asyncio", "factory-boy", "psutil", "websockets")
PYTEST_INI = """[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
markers =
    slow: starts real server/worker processes
    browser: drives headless Chromium
    rq_only: about RQ itself
    celery_only: about Celery itself
"""


@pytest.mark.slow
@pytest.mark.own_database  # DATABASE_URL=sqlite:// below
def test_the_librarys_own_tests_pass_against_the_installed_wheel(wheel, tmp_path):
    """tests/library, copied beside a fresh virtualenv that has the wheel and the test tools alone:
    nothing of this checkout is importable there, so every `import live_tasks` is the installed one."""
    python = fresh_virtualenv(wheel, tmp_path / "venv")
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", *(f"{t}=={pins[t]}" for t in LIBRARY_TEST_TOOLS)], check=True
    )
    run = tmp_path / "run"
    shutil.copytree(ROOT / "tests" / "library", run / "library_tests", ignore=shutil.ignore_patterns("__pycache__"))
    (run / "pytest.ini").write_text(PYTEST_INI)
    env = {
        **CLEAN_ENV,
        "TEST_REDIS_URL": LIBRARY_TESTS_REDIS,
        "TEST_OUTPUT_DIR": str(tmp_path / "out"),
        "DATABASE_URL": "sqlite://",  # the run's own file: not this session's test database
    }
    installed = subprocess.run(
        [str(python), "-c", "import live_tasks; print(live_tasks.__file__)"],
        cwd=run,
        env=env,
        capture_output=True,
        text=True,
    )
    assert "site-packages" in installed.stdout, installed.stdout + installed.stderr
    done = subprocess.run(
        [
            str(python),
            "-m",
            "pytest",
            "library_tests",
            "--ds=library_tests.settings",
            "-m",
            "not slow and not celery_only",  # on RQ, the library's default queue
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=run,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    passed = re.search(r"(\d+) passed", done.stdout)
    assert passed and int(passed.group(1)) >= 100 and " failed" not in done.stdout, done.stdout[-2000:]


# The project


def fresh_virtualenv(wheel: Path, env_dir: Path) -> Path:
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # With the extras for `@task` functions (on Django 5.2 the django-tasks backport; on 6, unused)
    # and for Celery (the library's checks of a Celery setting import it).
    subprocess.run([str(python), "-m", "pip", "install", "-q", f"{wheel}[django-tasks,celery]"], check=True)
    # `import live_tasks` reads no setting: it works with none configured.
    versions = subprocess.run(
        [str(python), "-c", "import django, live_tasks; print(django.get_version(), live_tasks.__version__)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    print(f"fresh virtualenv: Django and live_tasks {versions.strip()}")  # the wheel's ranges, from the index
    return python


def install_blocks() -> dict[str, str]:
    """The README's "Install in your project" code blocks, by the file their first comment names."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Install in your project", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(# ([\w.]+?):?\s.*?)```", section, re.S)
    return {name: code for code, name in blocks}


def fresh_project(python: Path, project: Path) -> Path:
    """`django-admin startproject site1`, then the README's blocks and the kind's app `counter`."""
    project.mkdir()
    subprocess.run([str(python.parent / "django-admin"), "startproject", "site1", str(project)], check=True)
    blocks = install_blocks()
    assert set(blocks) == {"settings.py", "urls.py", "asgi.py"}

    # settings.py: the README's block, on database 9 and with a channel prefix of this run's
    # (pub/sub channels ignore database numbers, and user ids repeat from one project to another).
    settings = blocks["settings.py"].replace("redis://127.0.0.1:6379/0", PROJECT_REDIS)
    hosts = f'"hosts": ["{PROJECT_REDIS}"]'
    assert settings.count(PROJECT_REDIS) == 2 and hosts in settings, settings
    settings = settings.replace(hosts, f'{hosts}, "prefix": "fresh-{uuid.uuid4().hex[:8]}"')
    with (project / "site1" / "settings.py").open("a") as out:
        out.write(f'\n{settings}\nINSTALLED_APPS += ["counter"]\n')
        # The README's django.tasks setting; on Django 5.2 the backport is an app of its own.
        out.write(f"\n{django_tasks_setting()}\n")
        out.write('import django\nif django.VERSION < (6, 0):\n    INSTALLED_APPS += ["django_tasks"]\n')

    # urls.py: startproject's `path('admin/', admin.site.urls),` (in its Django version's quotes),
    # then the README's line and the launch view's.
    (tasks_line,) = re.findall(r'path\("tasks/", include\("live_tasks\.urls"\)\),', blocks["urls.py"])
    urls = project / "site1" / "urls.py"
    text = re.sub(
        r"^from django\.urls import path$",
        "from counter.views import count_start, count_words_start\nfrom django.urls import include, path",
        urls.read_text(),
        flags=re.M,
    )
    text = re.sub(
        r"(\n\s*path\(.admin/., admin\.site\.urls\),)",
        rf'\1\n    {tasks_line}\n    path("count/", count_start),\n    path("words/", count_words_start),',
        text,
    )
    urls.write_text(text)
    assert "live_tasks.urls" in urls.read_text() and "count_start)" in urls.read_text()

    # asgi.py: the README's block in place of startproject's last line.
    asgi = project / "site1" / "asgi.py"
    text = asgi.read_text()
    assert text.count("application = get_asgi_application()") == 1, text
    asgi.write_text(text.replace("application = get_asgi_application()", blocks["asgi.py"]))

    (project / "counter").mkdir()
    (project / "counter" / "__init__.py").write_text("")
    (project / "counter" / "kinds.py").write_text(textwrap.dedent(KIND).lstrip())
    (project / "counter" / "views.py").write_text(textwrap.dedent(VIEW).lstrip() + DJANGO_TASK_VIEW)
    (project / "counter" / "tasks.py").write_text(textwrap.dedent(DJANGO_TASK).lstrip())
    return project


def django_tasks_setting() -> str:
    """The README's `TASKS = ...` line, from its "Already using django.tasks?" section."""
    section = (ROOT / "README.md").read_text().split("## Already using django.tasks?", 1)[1].split("\n## ", 1)[0]
    (line,) = re.findall(r"^TASKS = .*$", section, re.M)
    return line


def manage(python: Path, project: Path, *args: str) -> str:
    done = subprocess.run([str(python), "manage.py", *args], cwd=project, capture_output=True, text=True, env=CLEAN_ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


# The programs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(python: Path, project: Path) -> Iterator[str]:
    """daphne and `rqworker default` of the fresh virtualenv, in the project; yields daphne's base URL."""
    port = free_port()
    logs = Path(os.environ.get("TEST_OUTPUT_DIR", ROOT / "test-output"))
    logs.mkdir(parents=True, exist_ok=True)
    programs = {
        "fresh-daphne": [str(python), "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "site1.asgi:application"],
        "fresh-worker": [str(python), "manage.py", "rqworker", "default"],
    }
    procs: list[subprocess.Popen] = []
    try:
        for name, args in programs.items():
            with open(logs / f"{name}.log", "w") as log:
                # Each in a process group of its own: the worker's work horse goes with it.
                procs.append(
                    subprocess.Popen(
                        args, cwd=project, env=CLEAN_ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )
        deadline = time.monotonic() + CEILING
        while not listening(port):
            assert all(proc.poll() is None for proc in procs), f"a program exited: see {logs}/fresh-*.log"
            assert time.monotonic() < deadline, f"daphne does not listen on {port}: see {logs}/fresh-daphne.log"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
        assert all(proc.poll() is None for proc in procs), f"a program exited: see {logs}/fresh-*.log"
    finally:
        for proc in procs:
            stop(proc)


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def stop(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=10)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


# The clients


class Browser:
    """A script's HTTP client of the fresh site: its cookies, the CSRF token in POSTs, redirects followed."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = CookieJar()
        self._opener = build_opener(HTTPCookieProcessor(self.jar))

    def cookie(self, name: str) -> str:
        values = [c.value for c in self.jar if c.name == name and c.value is not None]
        assert values, f"no {name} cookie was set"
        return values[-1]

    def request(self, method: str, path: str, *, form: dict | None = None, json_client: bool = False):
        """(status, final URL, body)."""
        headers = {"Origin": self.base}
        if method == "POST":
            headers["X-CSRFToken"] = self.cookie("csrftoken")
        if json_client:
            headers["Accept"] = "application/json"
        data = urlencode(form or {}).encode() if method == "POST" else None
        request = Request(self.base + path, data=data, method=method, headers=headers)  # noqa: S310 -- http to daphne
        try:
            with self._opener.open(request, timeout=CEILING) as response:
                return response.status, response.url, response.read()
        except HTTPError as error:
            return error.code, error.url, error.read()

    def post_json(self, path: str, form: dict | None = None) -> tuple[int, dict]:
        status, _, body = self.request("POST", path, form=form, json_client=True)
        return status, json.loads(body)


def signed_in(base: str, username: str) -> Browser:
    """A user signed in through the admin's login form, as a person would: a real session."""
    browser = Browser(base)
    status, _, _ = browser.request("GET", "/admin/login/")
    assert status == 200
    status, url, _ = browser.request(
        "POST",
        "/admin/login/?next=/admin/",
        form={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": browser.cookie("csrftoken")},
    )
    assert (status, url) == (200, base + "/admin/"), (status, url)
    browser.cookie("sessionid")
    return browser


class Feed:
    """The live socket at /ws/tasks/, with the session cookie and the site's own Origin."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: list[dict] = []

    def next(self, deadline: float, waiting_for: str = "a message") -> dict:
        try:
            message = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
        except TimeoutError:
            raise AssertionError(f"{waiting_for}: nothing within {CEILING}s; received {self.received}") from None
        self.received.append(message)
        return message

    def snapshot(self) -> list[dict]:
        message = self.next(time.monotonic() + CEILING)
        assert message["type"] == "snapshot", message
        return message["tasks"]

    def follow(self, task_id: str, until) -> list[dict]:
        """This task's messages, in order, until one for which `until(task)` holds."""
        deadline = time.monotonic() + CEILING
        seen: list[dict] = []
        while not (seen and until(seen[-1])):
            message = self.next(deadline, waiting_for=f"waiting for task {task_id} to go on")
            if message["type"] == "task" and message["task"]["id"] == task_id:
                seen.append(message["task"])
        return seen


@contextmanager
def feed(browser: Browser, query: str = "") -> Iterator[Feed]:
    url = browser.base.replace("http://", "ws://") + "/ws/tasks/" + query
    headers = {"Cookie": f"sessionid={browser.cookie('sessionid')}", "Origin": browser.base}
    with connect(url, additional_headers=headers, open_timeout=CEILING) as ws:
        yield Feed(ws)


# The scenes


def finished(task: dict) -> bool:
    return task["status"] not in ("queued", "running")


def launch(browser: Browser, to: int) -> dict:
    status, task = browser.post_json("/count/", {"to": str(to)})
    assert status == 202, task
    assert (task["kind"], task["label"], task["status"]) == ("count", "Count", "queued")
    return task


def django_task_runs_live(ada: Browser, live: Feed) -> str:
    """A `@task` function enqueued for ada: on her socket from queued to succeeded, with its progress."""
    status, body = ada.post_json("/words/", {"text": "one two three four five"})
    assert status == 202, body
    messages = live.follow(body["id"], until=finished)
    assert [m["status"] for m in messages][:2] == ["queued", "running"] and messages[-1]["status"] == "succeeded"
    assert messages[0]["kind"] == "django_task" and messages[0]["user"] == "ada"
    assert any(m["detail"].endswith("of 5 words") for m in messages), "live_tasks.progress, pushed"
    return body["id"]


def launch_and_follow_to_success(ada: Browser, live: Feed) -> dict:
    assert live.snapshot() == []
    task = launch(ada, 100)  # about 2 s of work: several progress updates, 0.25 s apart
    messages = live.follow(task["id"], until=finished)
    assert messages[0]["status"] == "queued" and messages[0]["seq"] == 0, messages[0]
    seqs = [m["seq"] for m in messages]
    assert seqs == sorted(set(seqs)), seqs
    running = [m["progress"] for m in messages if m["status"] == "running"]
    assert running == sorted(running), running
    assert len({p for p in running if 0 < p < 100}) >= 2, f"no live progress: {messages}"
    done = messages[-1]
    assert (done["status"], done["progress"], done["detail"]) == ("succeeded", 100, "Counted to 100"), done
    assert done["download_url"] == f"/tasks/{task['id']}/download/"
    assert done["file_size"] == len(counted_to(100))

    status, _, page = ada.request("GET", done["url"])
    assert status == 200 and b"live_tasks/live.js" in page
    return done


def counted_to(to: int) -> bytes:
    return "".join(f"{n}\n" for n in range(1, to + 1)).encode()


def download_is_the_owners_alone(ada: Browser, bob: Browser, task: dict) -> None:
    status, _, body = ada.request("GET", task["download_url"])
    assert (status, body) == (200, counted_to(100))
    status, _, _ = bob.request("GET", task["download_url"])
    assert status == 404
    status, _, _ = bob.request("GET", f"/tasks/api/{task['id']}/")
    assert status == 404


def cancel_while_running(ada: Browser, live: Feed) -> dict:
    task = launch(ada, 5000)  # 100 s of work: it runs until cancelled
    live.follow(task["id"], until=lambda t: t["status"] == "running" and t["progress"] > 0)
    status, cancelled = ada.post_json(task["cancel_url"])
    assert (status, cancelled["status"]) == (200, "cancelled"), cancelled
    final = live.follow(task["id"], until=finished)[-1]
    assert (final["status"], final["detail"], final["cancel_url"]) == ("cancelled", "Cancelled.", None), final
    status, _, _ = ada.request("GET", f"/tasks/{task['id']}/download/")
    assert status == 404  # no result file
    # The work stopped: the one worker runs the next task at once, not in 100 s.
    after = launch(ada, 3)
    assert live.follow(after["id"], until=finished)[-1]["status"] == "succeeded"
    return final


def admin_lists_every_task(root: Browser, ada: Browser, tasks: list[dict]) -> None:
    status, _, page = root.request("GET", "/admin/live_tasks/task/")
    assert status == 200
    for task in tasks:
        assert f'data-task-id="{task["id"]}"'.encode() in page
    assert b">Count</a>" in page
    status, _, _ = ada.request("GET", "/admin/live_tasks/task/")
    assert status == 403  # staff without the permission to watch every task
    with feed(root, "?scope=all") as staff_feed:  # the admin page's own live feed
        ids = {task["id"] for task in staff_feed.snapshot()}
    assert {task["id"] for task in tasks} <= ids


# The checks


def check_names_each_misconfiguration(python: Path, project: Path) -> None:
    for app, registration in MISFIT_KINDS.items():
        (project / app).mkdir()
        (project / app / "__init__.py").write_text("")
        (project / app / "kinds.py").write_text(
            f"from counter.kinds import count\nfrom live_tasks import TaskKind, register\n\n{registration}\n"
        )
    runs = {}
    for check_id, change in MISCONFIGURATIONS.items():
        module = f"broken_{check_id.rsplit('.', 1)[1].lower()}"
        (project / "site1" / f"{module}.py").write_text(f"from .settings import *  # noqa: F403\n\n{change}\n")
        runs[check_id] = subprocess.Popen(
            [str(python), "manage.py", "check", "--settings", f"site1.{module}"],
            cwd=project,
            env=CLEAN_ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    for check_id, run in runs.items():
        out, _ = run.communicate(timeout=CEILING)
        assert run.returncode == 1, f"{check_id}: {out}"
        assert set(re.findall(r"live_tasks\.E\d{3}", out)) == {check_id}, f"{MISCONFIGURATIONS[check_id]}: {out}"

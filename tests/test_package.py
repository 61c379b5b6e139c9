"""The library as a Django developer gets it: the wheel built from this checkout, installed into a
fresh virtualenv, in a project made by `django-admin startproject` with only what the README's
"Install in your project" lists, plus one kind of its own.

Not yet here (CHANGELOG.md, "Not yet"): the same project driven end to end through daphne and
`rqworker`; this test stops at what a site sees without a worker.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent
# The new project's own settings, not the ones this test run exported.
CLEAN_ENV = {name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"}

PROJECT_REDIS = "redis://127.0.0.1:6379/9"

SETTINGS = """
INSTALLED_APPS += ["django_rq", "live_tasks", "wordcount"]
RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:6379/9"}}
RQ = {"WORKER_CLASS": "live_tasks.worker.TaskWorker"}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": ["redis://127.0.0.1:6379/9"], "prefix": "fresh-project"},
    }
}
"""

KIND = """
from live_tasks import TaskKind, TaskResult, register


def count(task, progress):
    for done in range(1, 11):
        progress(done, 10, detail=f"{done} of 10")
    return TaskResult(detail="10 counted")


register(TaskKind(name="count", label="Count", run=count))
"""

DRIVE = """
from django.contrib.auth.models import User
from django.test import Client

import live_tasks

user = User.objects.create_user("ada", password="pw-for-tests-only")
task = live_tasks.task_start(user=user, kind="count")
client = Client(HTTP_HOST="localhost")
client.force_login(user)
page = client.get(f"/tasks/{task.id}/")
api = client.get(f"/tasks/api/{task.id}/").json()
print("PAGE", page.status_code, "live_tasks/live.js" in page.content.decode(), api["status"], api["label"])
"""


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
    ):
        assert part in names


@pytest.mark.slow
def test_a_fresh_startproject_site_runs_the_installed_library(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True)
    # `import live_tasks` reads no setting: it works with none configured.
    subprocess.run([str(python), "-c", "import live_tasks; assert live_tasks.__version__"], check=True)

    project = tmp_path / "p"
    project.mkdir()
    subprocess.run([str(env_dir / "bin" / "django-admin"), "startproject", "site1", str(project)], check=True)
    with (project / "site1" / "settings.py").open("a") as settings:
        settings.write(SETTINGS)
    urls = project / "site1" / "urls.py"
    text = urls.read_text().replace("from django.urls import path", "from django.urls import include, path")
    # startproject's urls.py: path('admin/', admin.site.urls), in the quotes of its Django version.
    urls.write_text(
        re.sub(
            r"(\n\s*path\(.admin/., admin\.site\.urls\),)", r'\1\n    path("tasks/", include("live_tasks.urls")),', text
        )
    )
    assert "live_tasks.urls" in urls.read_text()
    (project / "wordcount").mkdir()
    (project / "wordcount" / "__init__.py").write_text("")
    (project / "wordcount" / "kinds.py").write_text(textwrap.dedent(KIND))

    def manage(*args: str) -> str:
        done = subprocess.run(
            [str(python), "manage.py", *args], cwd=project, capture_output=True, text=True, env=CLEAN_ENV
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    assert "no issues" in manage("check")
    manage("migrate", "-v0")
    # A misconfiguration is named: no task worker class.
    (project / "site1" / "settings.py").open("a").write("\nRQ = {}\n")
    broken = subprocess.run(
        [str(python), "manage.py", "check"], cwd=project, capture_output=True, text=True, env=CLEAN_ENV
    )
    assert "live_tasks.E001" in broken.stdout + broken.stderr
    # Metrics asked for without the [metrics] extra (prometheus-client) installed: named too.
    (project / "site1" / "settings.py").open("a").write('\nLIVE_TASKS = {"METRICS_TOKEN": "x" * 40}\n')
    broken = subprocess.run(
        [str(python), "manage.py", "check"], cwd=project, capture_output=True, text=True, env=CLEAN_ENV
    )
    assert "live_tasks.E009" in broken.stdout + broken.stderr
    with (project / "site1" / "settings.py").open("a") as settings:
        settings.write('\nRQ = {"WORKER_CLASS": "live_tasks.worker.TaskWorker"}\nLIVE_TASKS = {}\n')

    try:
        out = manage("shell", "-c", DRIVE)
    finally:
        redis.Redis.from_url(PROJECT_REDIS).flushdb()  # the job it enqueued, which no worker runs here
    assert "PAGE 200 True queued Count" in out

"""This site's real settings pass every check of the library (each check's own tests:
tests/library/test_checks.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.core.checks import run_checks

from tests.processes import ROOT


@pytest.mark.django_db  # Django 6.1's model checks ask the database what it supports (JSONField)
@pytest.mark.parametrize("backend", ["rq", "celery"])
def test_the_site_settings_give_none_of_the_librarys(settings, backend):
    # On Celery: the site's app (project/celery.py) is loaded, with a broker and a prefetch of one.
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "QUEUE_BACKEND": backend}
    assert [m for m in run_checks() if str(m.id).startswith("live_tasks.")] == []


@pytest.mark.parametrize("backend", ["rq", "celery"])
def test_manage_py_check_on_the_real_settings_is_clean(backend):
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="project.settings", QUEUE_BACKEND=backend)
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_the_celery_worker_knows_every_task_the_site_sends():
    """On Celery, the site's app has the library's job and the account emails' task (registered by
    the apps' ready(), no autodiscovery), and its broker and prefetch come from the settings."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="project.settings", QUEUE_BACKEND="celery")
    script = (
        "import json, django; django.setup(); from project import celery_app as app; "
        "print(json.dumps({'tasks': sorted(n for n in app.tasks if not n.startswith('celery.')), "
        "'broker': app.conf.broker_url, 'prefetch': app.conf.worker_prefetch_multiplier, "
        "'backend': app.conf.result_backend}))"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded["tasks"] == ["accounts.send_email", "live_tasks.run_task"]
    assert loaded["broker"].startswith("amqp://") and loaded["prefetch"] == 1
    assert loaded["backend"] is None, "no result backend: the task row is the result"

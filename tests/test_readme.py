"""The README's worked example ("Add your own long job") runs as printed: a new kind, launched,
run by a real RQ worker, with its live progress and its file."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import RequestFactory
from rq import SimpleWorker

from live_tasks.kinds import get_kind
from live_tasks.models import Task
from live_tasks.services import task_cancel, task_start
from live_tasks.signals import task_finished, task_started
from tests.factories import PostFactory, UserFactory, signed_in_client
from tests.library.testapp.kinds import TEST_STEPS
from tests.processes import ROOT


def example_blocks() -> dict[str, str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Add your own long job", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(# (\S+).*?)```", section, re.S)
    return {name.rstrip(":"): code for code, name in blocks}


def test_the_readme_example_is_a_working_kind(db, queue, django_capture_on_commit_callbacks):
    blocks = example_blocks()
    assert set(blocks) == {"wordcount/kinds.py", "wordcount/apps.py", "wordcount/views.py"}
    exec(compile(blocks["wordcount/kinds.py"], "README:wordcount/kinds.py", "exec"), {})  # noqa: S102
    compile(blocks["wordcount/apps.py"], "README:wordcount/apps.py", "exec")
    views: dict = {}
    exec(compile(blocks["wordcount/views.py"], "README:wordcount/views.py", "exec"), views)  # noqa: S102

    user = UserFactory()
    PostFactory(author=user, body="the cat and the hat")
    PostFactory(author=user, body="The end")
    request = RequestFactory().post("/wordcount/", HTTP_ACCEPT="application/json")
    request.user = user
    with django_capture_on_commit_callbacks(execute=True):
        response = views["word_count_start"](request)
    assert response.status_code == 202

    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    task = Task.objects.get(kind="count_words")
    assert (task.status, task.detail, task.label) == ("succeeded", "5 different words", "Word count")
    assert task.file.open("rb").read().decode().splitlines()[0] == "the,3"
    download = signed_in_client(user).get(f"/tasks/{task.id}/download/")
    assert download["Content-Disposition"] == f'attachment; filename="count_words-{task.id}.csv"'
    assert get_kind("count_words").job_timeout() == 600


def test_the_readme_answers_what_a_newcomer_tripped_on():
    readme = (ROOT / "README.md").read_text()
    assert "WEB_PORT=8001 make run" in readme, "serving on another port"
    assert "CHANNEL_LAYER_PREFIX" in readme and "Two instances on one Redis" in readme
    assert "filemail:////" in readme, "an absolute path for file emails has four slashes"
    assert "python manage.py collectstatic" in readme and "DEBUG=0" in readme
    assert "seed_posts alice 100000 --password" in readme


def readme_example() -> str:
    section = (ROOT / "README.md").read_text().split("\n## Signals\n", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    return code


@pytest.mark.django_db(transaction=True)
def test_the_readmes_example_receivers_count_runs_outcomes_and_seconds(queue):
    example: dict[str, Any] = {}
    exec(compile(readme_example(), "README:metrics/receivers.py", "exec"), example)  # noqa: S102
    try:
        user = UserFactory()
        task_start(user=user, kind=TEST_STEPS, params={"steps": 1})
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        task_cancel(task=task_start(user=user, kind=TEST_STEPS))
    finally:
        task_started.disconnect(example["count_started"])
        task_finished.disconnect(example["count_finished"])

    assert example["counts"] == {"test_steps.started": 1, "test_steps.succeeded": 1, "test_steps.cancelled": 1}
    assert 0 < example["seconds"]["test_steps"] < 10, "the one that ran; the cancelled one never started"


def test_the_readmes_django_tasks_example_is_the_sites_recount_app():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Already using django.tasks?", 1)[1].split("\n## ", 1)[0]
    blocks = dict((name, code) for code, name in re.findall(r"```python\n(# (\S+?):.*?)```", section, re.S))
    assert set(blocks) == {"settings.py", "recount/tasks.py", "recount/views.py"}
    for name in ("recount/tasks.py", "recount/views.py"):
        assert (ROOT / name).read_text() == blocks[name], f"README's {name} is the site's file as it is"
    setting = blocks["settings.py"].split("\n", 1)[1]
    assert setting in (ROOT / "project/settings.py").read_text()


def celery_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("\n## Choosing a queue: RQ or Celery\n", 1)[1].split("\n## ", 1)[0]


def test_the_readmes_celery_app_is_the_sites_and_its_settings_are_the_sites():
    """The "On Celery" blocks as this site has them: its project/celery.py, the CELERY_* settings it
    sets (its broker URL read from the environment, with the README's as the default), and the
    worker and scheduler commands of Procfile.celery."""
    blocks = dict(
        (name, code) for code, name in re.findall(r"```python\n(# ([^\s,]+),?\s.*?)```", celery_section(), re.S)
    )
    assert set(blocks) == {"settings.py", "yourproject/celery.py"}

    app_code = blocks["yourproject/celery.py"].split("\n", 1)[1].replace("yourproject", "project")
    site_app = (ROOT / "project" / "celery.py").read_text()
    assert site_app.endswith(app_code), "project/celery.py is the README's app"
    assert "from .celery import app as celery_app" in (ROOT / "project" / "__init__.py").read_text()

    site_settings = (ROOT / "project" / "settings.py").read_text()
    for line in blocks["settings.py"].splitlines()[1:]:
        name, value = (part.strip() for part in line.split("=", 1))
        if name == "LIVE_TASKS":
            assert '"QUEUE_BACKEND": env.str("QUEUE_BACKEND", default="rq")' in site_settings
        elif name == "CELERY_BROKER_URL":
            assert f'{name} = env.str("CELERY_BROKER_URL", default={value})' in site_settings
        else:
            assert f"{line}\n" in site_settings, line

    (commands,) = re.findall(r"```sh\n(.*?)```", celery_section(), re.S)
    worker, scheduler = (line.split("#", 1)[0].strip() for line in commands.strip().splitlines())
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile.celery").read_text().splitlines())
    site_worker = worker.replace("yourproject", "project").replace("-Q default", "-Q default,email")
    assert set(site_worker.split()) <= set(procfile["celery-worker"].split()), procfile["celery-worker"]
    assert procfile["scheduler"] == scheduler

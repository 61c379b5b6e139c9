"""`manage.py check` names each misconfiguration of the core by its own id (live_tasks/checks.py), and
says nothing of ours on settings made as README's "Install in your project" says (tests/library/settings.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from channels.layers import InMemoryChannelLayer
from django.core.checks import run_checks

from live_tasks import kinds
from live_tasks.conf import live_settings
from live_tasks.kinds import TaskKind, TaskResult, get_kind, register
from live_tasks.worker import TaskWorker

from .helpers import ROOT, django_admin

REDIS_LAYER = {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": ["redis://x"]}}


class SiteWorker(TaskWorker):
    """A site's own worker class, built on the task worker: accepted."""


class SiteInMemoryLayer(InMemoryChannelLayer):
    """Still one process's memory, whatever its name."""


def our_messages() -> list:
    """What `manage.py check` reports of ours, by our registration (the tag proves it is registered),
    less what SILENCED_SYSTEM_CHECKS silences, as the command does."""
    return [m for m in run_checks(tags=["live_tasks"]) if str(m.id).startswith("live_tasks.") and not m.is_silenced()]


def our_ids() -> set[str]:
    return {m.id for m in our_messages()}


@pytest.fixture
def registry():
    """The kinds' registry as it is, given back as it was after the test."""
    saved = dict(kinds._registry), dict(kinds._registered_at), list(kinds._clashes)
    yield kinds
    kinds._registry.clear()
    kinds._registry.update(saved[0])
    kinds._registered_at.clear()
    kinds._registered_at.update(saved[1])
    kinds._clashes[:] = saved[2]


def a_kind(name: str = "check_probe", **fields) -> TaskKind:
    fields.setdefault("label", "Probe")
    return TaskKind(name=name, run=lambda task, progress: TaskResult(detail="done"), **fields)


SETTINGS = os.environ["DJANGO_SETTINGS_MODULE"]  # this session's: pytest-django sets it


@pytest.mark.django_db  # Django 6.1's model checks ask the database what it supports (JSONField)
def test_the_documented_settings_give_none_of_ours():
    assert our_messages() == []
    assert [m for m in run_checks() if str(m.id).startswith("live_tasks.")] == []


def check(settings_module: str, pythonpath: str = str(ROOT)) -> subprocess.CompletedProcess:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE=settings_module, PYTHONPATH=pythonpath)
    return subprocess.run(django_admin("check"), cwd=ROOT, env=env, capture_output=True, text=True)


def test_manage_py_check_on_the_documented_settings_is_clean():
    done = check(SETTINGS)
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues" in done.stdout


def test_manage_py_check_fails_and_names_each_misconfiguration(tmp_path):
    (tmp_path / "broken_settings.py").write_text(
        f"from {SETTINGS} import *\n"
        'RQ = {"COMMIT_MODE": "auto"}\n'
        'CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}\n'
        "USE_TZ = False\n"
    )
    done = check("broken_settings", f"{tmp_path}{os.pathsep}{ROOT}")
    assert done.returncode == 1
    for check_id in ("live_tasks.E004", "live_tasks.E005"):
        assert check_id in done.stderr
    if live_settings.QUEUE_BACKEND == "rq":  # E001: RQ's worker class (Celery's worker side is the library's)
        assert "live_tasks.E001" in done.stderr
        assert 'HINT: Set RQ = {..., "WORKER_CLASS": "live_tasks.worker.TaskWorker"}' in done.stderr


# E001: the worker class


@pytest.mark.rq_only
@pytest.mark.parametrize(
    "worker_class",
    [
        None,
        "rq.Worker",
        "rq.SimpleWorker",
        "live_tasks.worker.warm_up",
        "live_tasks.worker.NoSuchWorker",
        "nowhere.Worker",
    ],
)
def test_a_worker_class_that_is_not_the_task_worker(settings, worker_class):
    settings.RQ = {"COMMIT_MODE": "auto"} if worker_class is None else {"WORKER_CLASS": worker_class}
    (message,) = our_messages()
    assert message.id == "live_tasks.E001"
    assert message.obj == "settings.RQ"
    assert '"WORKER_CLASS": "live_tasks.worker.TaskWorker"' in message.hint
    if worker_class in (None, "rq.Worker"):
        assert "heartbeat" in message.msg and "dead work horse" in message.msg


@pytest.mark.rq_only
def test_a_subclass_of_the_task_worker_is_accepted(settings):
    settings.RQ = {"WORKER_CLASS": f"{__name__}.SiteWorker"}
    assert our_ids() == set()


# E002: the queue


def test_the_tasks_queue_missing_from_rq_queues(settings):
    queue = live_settings.QUEUE  # "default" on RQ; on Celery it names the library's Redis there
    settings.RQ_QUEUES = {"other": settings.RQ_QUEUES[queue]}
    (message,) = our_messages()
    assert (message.id, message.obj) == ("live_tasks.E002", "settings.RQ_QUEUES")
    assert f"'{queue}'" in message.msg and f'RQ_QUEUES = {{"{queue}":' in message.hint


# E003, E004: the channel layer


@pytest.mark.parametrize("layers", [{}, {"other": REDIS_LAYER}, {"default": {}}])
def test_no_default_channel_layer(settings, layers):
    settings.CHANNEL_LAYERS = layers
    (message,) = our_messages()
    assert (message.id, message.obj) == ("live_tasks.E003", "settings.CHANNEL_LAYERS")
    assert '"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer"' in message.hint


@pytest.mark.parametrize("backend", ["channels.layers.InMemoryChannelLayer", f"{__name__}.SiteInMemoryLayer"])
def test_the_in_memory_channel_layer(settings, backend):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": backend}}
    (message,) = our_messages()
    assert message.id == "live_tasks.E004"
    assert 'SILENCED_SYSTEM_CHECKS = ["live_tasks.E004"]' in message.hint


def test_test_settings_may_silence_the_in_memory_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.SILENCED_SYSTEM_CHECKS = ["live_tasks.E004"]
    assert our_ids() == set()


def test_another_cross_process_layer_is_accepted(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}
    assert our_ids() == set()


# E005: USE_TZ


def test_use_tz_off(settings):
    settings.USE_TZ = False
    (message,) = our_messages()
    assert (message.id, message.obj) == ("live_tasks.E005", "settings.USE_TZ")
    assert "USE_TZ = True" in message.hint


# E006: a kind registered twice


def test_a_kind_registered_twice_names_both_places(registry):
    first = register(a_kind())
    second_line = sys._getframe().f_lineno + 1
    register(a_kind(label="Another"))
    (message,) = our_messages()
    assert (message.id, message.obj) == ("live_tasks.E006", "check_probe")
    assert f"{__file__}:{second_line - 2}" in message.msg, "the first place"
    assert f"{__file__}:{second_line}" in message.msg, "the second place"
    assert get_kind("check_probe") is first, "the first registration stays in use"


def test_a_module_run_again_replaces_its_kind_without_a_clash(registry):
    for label in ("Before", "After"):  # one place, twice: a reload, or the README's example run again
        register(a_kind(label=label))
    assert get_kind("check_probe").label == "After"
    assert our_ids() == set()


# E007: a kind's pages


def test_a_kind_whose_page_does_not_resolve(registry):
    register(a_kind(url_name="nowhere:detail"))
    (message,) = our_messages()
    assert (message.id, message.obj) == ("live_tasks.E007", "check_probe")
    assert "url_name 'nowhere:detail'" in message.msg and "task_id" in message.msg


def test_a_kind_whose_page_takes_no_task_id(registry):
    register(a_kind(url_name="live_tasks:list"))
    assert [m.id for m in our_messages()] == ["live_tasks.E007"]


def test_a_kind_whose_list_page_does_not_resolve(registry):
    register(a_kind(list_url_name="live_tasks:detail"))  # it needs a task_id
    (message,) = our_messages()
    assert message.id == "live_tasks.E007"
    assert "list_url_name 'live_tasks:detail'" in message.msg


def test_each_misconfiguration_has_its_own_id(settings, registry):
    settings.RQ = {}
    settings.RQ_QUEUES = {}
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.USE_TZ = False
    register(a_kind(url_name="nowhere"))
    register(a_kind(url_name="nowhere"))
    worker_class = (1,) if live_settings.QUEUE_BACKEND == "rq" else ()  # E001: RQ's worker class only
    assert our_ids() == {f"live_tasks.E00{n}" for n in (*worker_class, 2, 4, 5, 6, 7)}


def test_an_unknown_live_tasks_key_is_named(settings):
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "PROGRES_INTERVAL": 1}
    (error,) = [m for m in run_checks() if m.id == "live_tasks.E008"]
    assert "'PROGRES_INTERVAL'" in error.msg and "PROGRESS_INTERVAL" in (error.hint or "")


def test_the_queue_named_by_live_tasks_must_be_in_rq_queues(settings):
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "QUEUE": "long-tasks"}
    (error,) = [m for m in run_checks() if m.id == "live_tasks.E002"]
    assert "'long-tasks'" in error.msg
    settings.RQ_QUEUES = {**settings.RQ_QUEUES, "long-tasks": settings.RQ_QUEUES["default"]}
    assert not [m for m in run_checks() if m.id == "live_tasks.E002"]


# E011, W002: the queue backend


def backend_messages() -> list:
    return [m for m in our_messages() if m.id in ("live_tasks.E011", "live_tasks.W002")]


def test_an_unknown_queue_backend(settings):
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "QUEUE_BACKEND": "beanstalk"}
    (message,) = backend_messages()
    assert (message.id, message.obj) == ("live_tasks.E011", "settings.LIVE_TASKS")
    assert "'beanstalk'" in message.msg and "'rq', 'celery'" in message.msg


def test_celery_without_a_broker_then_with_a_prefetching_worker(settings, monkeypatch):
    from live_tasks.queue.celery import run_task

    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "QUEUE_BACKEND": "celery"}
    conf = run_task.app.conf
    monkeypatch.setitem(conf, "broker_url", None)
    (message,) = backend_messages()
    assert message.id == "live_tasks.E011" and "no broker_url" in message.msg
    assert "project/__init__.py" in message.hint

    monkeypatch.setitem(conf, "broker_url", "amqp://guest:guest@127.0.0.1:5672//")
    monkeypatch.setitem(conf, "worker_prefetch_multiplier", 4)
    (message,) = backend_messages()
    assert message.id == "live_tasks.W002" and "worker_prefetch_multiplier is 4" in message.msg

    monkeypatch.setitem(conf, "worker_prefetch_multiplier", 1)
    assert backend_messages() == []


@pytest.mark.celery_only
@pytest.mark.slow
def test_a_celery_worker_refuses_to_start_misconfigured(tmp_path):
    """As `rqworker` does: the library's checks run before the pool starts, and an error stops it."""
    from .helpers import worker_command

    (tmp_path / "broken_settings.py").write_text(f"from {SETTINGS} import *\nUSE_TZ = False\n")
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="broken_settings", PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
    done = subprocess.run(
        worker_command("misconfigured"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert "live_tasks.E005" in done.stdout + done.stderr
    assert " ready." not in done.stdout + done.stderr, "it never took a job"

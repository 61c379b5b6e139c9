"""`make run` runs the Procfile's processes under supervisord: one that exits is restarted, the
others carry on, and Ctrl-C (SIGINT) stops them all. `QUEUE_BACKEND=celery make run` runs
Procfile.celery's (supervisord-celery.conf), RabbitMQ first."""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.processes import ROOT, child_env, free_port, wait_for_port

CONFIG = ROOT / "supervisord.conf"
# QUEUE_BACKEND=celery: Procfile.celery's processes.
CELERY_CONFIG = ROOT / "supervisord-celery.conf"


def config_for_test(tmp_path: Path, *, stopwaitsecs: int | None = None, config: Path = CONFIG) -> Path:
    """supervisord.conf (or `config`) as it is, but for its socket (and pidfile), in tmp_path: a
    checkout run by the tests may have no .venv of its own, and two test runs must not share a
    socket. With `stopwaitsecs`, every program's warm shutdown is cut short after that many seconds."""
    text = config.read_text().replace("%(here)s/.venv/", f"{tmp_path}/").replace("%(here)s", str(ROOT))
    if stopwaitsecs is not None:
        text = re.sub(r"(?m)^stopwaitsecs=\d+$", f"stopwaitsecs={stopwaitsecs}", text)
    written = tmp_path / config.name
    written.write_text(text)
    return written


def procfile(name: str = "Procfile") -> dict[str, str]:
    lines = (ROOT / name).read_text().splitlines()
    return {name.strip(): command.strip() for name, command in (line.split(":", 1) for line in lines if line.strip())}


@pytest.mark.parametrize(("config_path", "procfile_name"), [(CONFIG, "Procfile"), (CELERY_CONFIG, "Procfile.celery")])
def test_supervisord_runs_exactly_the_procfile(config_path: Path, procfile_name: str):
    config = configparser.RawConfigParser()
    config.read(config_path)
    programs = {s.removeprefix("program:"): config[s] for s in config.sections() if s.startswith("program:")}
    expected = {
        name: command.replace("${WEB_PORT:-8000}", "%(ENV_WEB_PORT)s")
        for name, command in procfile(procfile_name).items()
    }
    assert {name: program["command"] for name, program in programs.items()} == expected
    for name, program in programs.items():
        assert program["autorestart"] == "true" and program["killasgroup"] == "true", name
        # Celery's main process alone gets the stop signal (its warm shutdown; a pool process that
        # got TERM would die at once): the group is killed only past stopwaitsecs.
        assert program["stopasgroup"] == ("false" if name == "celery-worker" else "true"), name
    makefile = (ROOT / "Makefile").read_text()
    assert "supervisord -n -c $(RUN_CONFIG)" in makefile
    assert f"RUN_CONFIG  := {config_path.name}" in makefile


def test_make_run_chooses_the_celery_processes_only_when_asked():
    """Unset or "rq": the RQ processes and no RabbitMQ, as always; "celery": RabbitMQ, then Procfile.celery's."""
    env = {k: v for k, v in os.environ.items() if k not in ("QUEUE_BACKEND", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    for backend, config, broker in (
        (None, "supervisord.conf", False),
        ("rq", "supervisord.conf", False),
        ("celery", "supervisord-celery.conf", True),
    ):
        run_env = env if backend is None else {**env, "QUEUE_BACKEND": backend}
        dry_run = subprocess.run(
            ["make", "-n", "run"], cwd=ROOT, env=run_env, capture_output=True, text=True, check=True
        ).stdout
        assert dry_run.rstrip().endswith(f"supervisord -n -c {config}"), (backend, dry_run)
        assert ("bash scripts/ensure_rabbitmq.sh" in dry_run) is broker, (backend, dry_run)
        assert ("a Celery worker" in dry_run) is broker and ("an RQ worker" in dry_run) is not broker


def children(supervisor: psutil.Process) -> dict[str, psutil.Process]:
    found = {}
    for child in supervisor.children():
        try:
            command = " ".join(child.cmdline())
        except psutil.Error:  # a killed child not yet reaped
            continue
        markers = (
            ("web", "daphne"),
            ("email-worker", "rqworker email"),
            ("worker", "rqworker default"),
            ("scheduler", "task_scheduler"),
        )
        for name, marker in markers:
            if marker in command:
                found[name] = child
                break
    return found


def wait_for(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_process_that_exits_is_restarted_and_ctrl_c_stops_them_all(tmp_path: Path):
    port = free_port()
    env = child_env(WEB_PORT=str(port))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # daphne, python: the venv's
    log = (tmp_path / "supervisord.log").open("w")
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(config_for_test(tmp_path))],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        parent = psutil.Process(supervisor.pid)
        wait_for_port(port, 30)
        first = wait_for(lambda: (found := children(parent)) and len(found) == 4 and found, 30)

        for name in ("worker", "email-worker", "web"):  # a crash of each, as the OOM killer would
            first[name].send_signal(signal.SIGKILL)
            replaced = wait_for(lambda n=name: (c := children(parent).get(n)) and c.pid != first[n].pid and c, 20)
            assert replaced.is_running()
        wait_for_port(port, 30)  # the web process serves again
        assert children(parent)["scheduler"].pid == first["scheduler"].pid, "the others carried on"

        everything = [parent, *parent.children(recursive=True)]
        supervisor.send_signal(signal.SIGINT)  # Ctrl-C
        supervisor.wait(60)
        gone, alive = psutil.wait_procs(everything, timeout=30)
        assert alive == [], f"still running after Ctrl-C: {alive}"
    finally:
        if supervisor.poll() is None:  # the test failed: stop everything it started
            stragglers = [psutil.Process(supervisor.pid), *psutil.Process(supervisor.pid).children(recursive=True)]
            for process in stragglers:
                process.kill()
            psutil.wait_procs(stragglers, timeout=10)
        log.close()
    log_text = (tmp_path / "supervisord.log").read_text()
    assert "exited: worker" in log_text and "exited: email-worker" in log_text


def test_make_run_prints_the_port_it_serves_and_emails_link_to_it():
    """WEB_PORT moves daphne (the Procfile), the address `make run` prints, and SITE_URL (email links)."""
    env = {k: v for k, v in os.environ.items() if k not in ("SITE_URL", "WEB_PORT", "EMAIL_URL")}
    dry_run = subprocess.run(
        ["make", "-n", "run"], cwd=ROOT, env={**env, "WEB_PORT": "8123"}, capture_output=True, text=True, check=True
    ).stdout
    assert "Starting daphne on http://127.0.0.1:8123/" in dry_run
    assert "with links to http://127.0.0.1:8123." in dry_run
    assert "${WEB_PORT:-8000}" in (ROOT / "Procfile").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "run: export SITE_URL ?= http://127.0.0.1:$(WEB_PORT)" in makefile
    # An absolute filemail:// path has four slashes: $(CURDIR) brings the fourth.
    assert "run: export EMAIL_URL ?= filemail:///$(CURDIR)/sent-emails" in makefile


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_supervisorctl_restart_worker_mid_import_leaves_no_horse_and_no_post_visible(tmp_path: Path):
    """A restart whose warm shutdown outlasts stopwaitsecs kills the worker with its job in hand. The
    real 30 s is cut to 2 here: a million posts import in less than 30 s on PostgreSQL, and a warm
    shutdown that lets the import finish (every post visible, rightly) is not the case under test."""
    from imports.services import import_start
    from live_tasks.errors import worker_lost_error
    from live_tasks.models import Task
    from posts.models import PendingBatch, Post
    from tests.factories import PostFactory, UserFactory
    from tests.imports.test_orphan_horse import HORSE_GONE_BOUND_SECONDS, KILL_AFTER_STAGED, big_import_file, gone
    from tests.processes import CEILING, wait_until

    user = UserFactory()
    PostFactory(author=user, body="mine before")
    upload = big_import_file(f"restart-{user.pk}")
    config = config_for_test(tmp_path, stopwaitsecs=2)
    env = child_env(WEB_PORT=str(free_port()))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    log = (tmp_path / "supervisord.log").open("w")
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(config)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        parent = psutil.Process(supervisor.pid)
        old_worker = wait_for(lambda: children(parent).get("worker"), 30)
        task = import_start(user=user, upload=upload, file_name="big.json")
        wait_until(lambda: Post.all_objects.filter(author=user).count() > KILL_AFTER_STAGED, CEILING, 0.2)
        (horse,) = old_worker.children()

        restart = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(config), "restart", "worker"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        seen, worker_gone_at, horse_gone_after = set(), None, None
        deadline = time.monotonic() + 3 * CEILING
        while True:  # every 50 ms until the task is over and cleaned up: what the user could see
            seen.add(Post.objects.by_author(user).count())
            if worker_gone_at is None and gone(old_worker):
                worker_gone_at = time.monotonic()
            if worker_gone_at is not None and horse_gone_after is None and gone(horse):
                horse_gone_after = time.monotonic() - worker_gone_at
            ended = Task.objects.get(pk=task.id)
            if ended.is_finished and not ended.needs_cleanup and horse_gone_after is not None:
                break
            assert time.monotonic() < deadline, f"{ended.__dict__}, worker gone: {worker_gone_at}, horse: {gone(horse)}"
            time.sleep(0.05)
        output, _ = restart.communicate(timeout=CEILING)
        assert restart.returncode == 0, output
        assert "worker: started" in output
        assert children(parent)["worker"].pid != old_worker.pid, "a new worker took over"
    finally:
        stragglers = [parent, *parent.children(recursive=True)]
        for process in stragglers:
            process.kill()
        psutil.wait_procs(stragglers, timeout=10)
        log.close()

    assert horse_gone_after < HORSE_GONE_BOUND_SECONDS, f"the horse outlived its worker by {horse_gone_after:.1f}s"
    assert seen == {1}, "only the post the user had was ever visible"
    assert (ended.status, ended.error) == ("failed", worker_lost_error("Posts import"))
    assert list(Post.all_objects.filter(author=user).values_list("body", flat=True)) == ["mine before"]
    assert not PendingBatch.objects.exists()


# What the tests' own processes inherit and `make run` must not: the test settings, and make's own
# variables when `make test` runs the suite.
NOT_FOR_MAKE_RUN = (
    "DJANGO_SETTINGS_MODULE",
    "TESTS_CHILD_PROCESS",
    "DEBUG",
    "SECRET_KEY",
    "DATABASE_URL",
    "DATABASE_POOL",
    "MEDIA_ROOT",
    "CHANNEL_LAYER_PREFIX",
    "TASK_PROGRESS_INTERVAL",
    "SITE_URL",
    "WEB_PORT",
    "EMAIL_URL",
    "QUEUE_BACKEND",
    "MAKEFLAGS",
    "MAKELEVEL",
    "MFLAGS",
)


@pytest.mark.slow
def test_make_run_on_celery_serves_the_demo_user_an_export_through_the_celery_worker(tmp_path: Path):
    """`QUEUE_BACKEND=celery make run` for real (RabbitMQ ensured, migrate, the demo user, then
    supervisord-celery.conf): the demo user signs in, launches an export, and the Celery worker runs
    it, and the password reset email too, with no RQ worker anywhere; Ctrl-C stops everything.

    Its own database, media and email folders (tmp_path), the session's Redis, and supervisord's
    socket in tmp_path (RUN_CONFIG, as config_for_test writes it), so that it never meets a
    developer's `make run`."""
    from django.conf import settings

    from tests.processes import HttpSession

    port = int(os.environ.get("TEST_MAKE_RUN_WEB_PORT") or free_port())
    emails = tmp_path / "sent-emails"
    env = {key: value for key, value in os.environ.items() if key not in NOT_FOR_MAKE_RUN}
    env.update(
        QUEUE_BACKEND="celery",
        WEB_PORT=str(port),
        REDIS_URL=settings.REDIS_URL,
        CHANNEL_LAYER_PREFIX=f"test-make-run-{os.getpid()}",
        DATABASE_URL=f"sqlite:///{tmp_path}/run.sqlite3",
        MEDIA_ROOT=str(tmp_path / "media"),
        EMAIL_URL=f"filemail:///{emails}",
    )
    config = config_for_test(tmp_path, config=CELERY_CONFIG)
    log_path = tmp_path / "make-run.log"
    log = log_path.open("w")
    make = subprocess.Popen(
        ["make", "run", f"RUN_CONFIG={config}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    everything: list[psutil.Process] = []
    try:
        # RabbitMQ, migrations and the demo's 300,000 posts first (a minute at most on CI), then
        # supervisord; make stopping early (no broker could be started, say) fails at once.
        def serving() -> bool:
            assert make.poll() is None, f"make run exited {make.returncode}:\n{log_path.read_text()[-4000:]}"
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        wait_for(serving, 240)

        def supervisor() -> psutil.Process | None:
            found = [p for p in psutil.Process(make.pid).children() if "supervisord" in " ".join(p.cmdline())]
            return found[0] if found else None

        parent = wait_for(supervisor, 30)
        commands = wait_for(
            lambda: (
                (found := [" ".join(c.cmdline()) for c in parent.children()])
                and any("celery -A project worker -Q default,email" in c for c in found)
                and any("task_scheduler" in c for c in found)
                and found
            ),
            30,
        )
        assert not [c for c in commands if "rqworker" in c], f"no RQ worker on Celery: {commands}"
        wait_for(lambda: "celery@" in log_path.read_text() and " ready." in log_path.read_text(), 60)

        browser = HttpSession(port)
        assert browser.request("GET", "/accounts/login/")[0] == 200
        status, _ = browser.request("POST", "/accounts/login/", form={"username": "demo", "password": "demo"})
        assert (status, browser.last_headers["Location"]) == (302, "/exports/"), "the demo user signs in"
        status, body = browser.request("POST", "/exports/", json_client=True)
        assert status == 202, body
        task_id = json.loads(body)["id"]

        def ended() -> dict | None:
            task = json.loads(browser.request("GET", f"/tasks/api/{task_id}/", json_client=True)[1])
            return task if task["status"] in ("succeeded", "failed", "cancelled") else None

        task = wait_for(ended, 120)
        assert (task["status"], task["detail"]) == ("succeeded", "300,000 posts exported")
        # The Celery worker ran it (its log, in make's output), not anything else. Celery logs the
        # job's end after the job marked its task succeeded, so the line may come a moment later.
        wait_for(lambda: re.search(rf"Task live_tasks\.run_task\[{task_id}\] succeeded", log_path.read_text()), 30)

        # The account emails go through Celery too: its "email" queue, on the same worker.
        assert browser.request("POST", "/accounts/password/reset/", form={"email": "demo@example.com"})[0] == 302
        wait_for(
            lambda: re.search(
                r"Task accounts\.send_email\[[\w-]+\] succeeded in [\d.]+s: 'sent'", log_path.read_text()
            ),
            30,
        )
        sent = [path.read_text() for path in emails.iterdir()]
        assert any("Reset your Exports password" in text for text in sent), sent

        # /healthz reads the broker: the tasks' queue has the worker as its consumer.
        health = json.loads(browser.request("GET", "/healthz")[1])
        assert health["queue"]["ok"] and health["queue"]["workers"] >= 1, health

        everything = [parent, *parent.children(recursive=True)]
        parent.send_signal(signal.SIGINT)  # Ctrl-C
        make.wait(90)
        _, alive = psutil.wait_procs(everything, timeout=30)
        assert alive == [], f"still running after Ctrl-C: {alive}"
    finally:
        if make.poll() is None or any(p.is_running() for p in everything):  # the test failed: stop it all
            stragglers = [psutil.Process(make.pid), *psutil.Process(make.pid).children(recursive=True)]
            for process in stragglers:
                with contextlib.suppress(psutil.Error):
                    process.kill()
            psutil.wait_procs(stragglers, timeout=10)
        log.close()

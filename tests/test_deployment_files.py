"""The container setup: docker-compose.yml, the Dockerfile and .dockerignore agree with each other,
with the Procfile and Makefile, and with what the settings actually read."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import environ
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("migrate", "web", "worker", "email-worker")
WEB_COMMAND = "daphne --proxy-headers -b 0.0.0.0 -p 8000 project.asgi:application"
WORKER_COMMAND = "python manage.py rqworker default"
# The account emails' own queue, with RQ's plain worker: its jobs have no task row (settings.RQ_QUEUES).
EMAIL_WORKER_COMMAND = "python manage.py rqworker email --worker-class rq.Worker"
MIGRATE_COMMAND = "python manage.py migrate --noinput"
REQUIRED_ENV = {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "EMAIL_URL", "MEDIA_ROOT"}
MEDIA_ROOT = "/app/media"
COMPOSE_VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def interpolate(value: str) -> str:
    """What `docker compose` makes of a value when the operator sets only the required variables."""

    def replace(match: re.Match) -> str:
        name, kind, arg = match.groups()
        if kind == "-":
            return arg
        if kind == "?":
            return f"operator-provided-{name.lower()}"
        raise AssertionError(f"${{{name}}} has no default and is not marked required with :?")

    return COMPOSE_VARIABLE.sub(replace, str(value))


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def depends_on(service: dict) -> dict[str, str]:
    return {name: spec["condition"] for name, spec in service.get("depends_on", {}).items()}


# --- docker-compose.yml ----------------------------------------------------------------------


def test_compose_has_the_six_services(services):
    assert set(services) >= {"redis", "db", "migrate", "web", "worker", "email-worker"}


def test_redis_and_postgres_images_with_healthchecks(services):
    assert services["redis"]["image"] == "redis:7-alpine"
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert services["db"]["image"] == "postgres:16-alpine"
    db_check = services["db"]["healthcheck"]["test"]
    assert db_check[0] in ("CMD", "CMD-SHELL") and "pg_isready" in " ".join(db_check[1:])
    assert {"POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"} <= set(environment(services["db"]))


def test_app_services_run_exactly_the_documented_commands(services):
    assert services["web"]["command"] == WEB_COMMAND
    assert services["worker"]["command"] == WORKER_COMMAND
    assert services["email-worker"]["command"] == EMAIL_WORKER_COMMAND
    assert services["migrate"]["command"] == MIGRATE_COMMAND
    for name in APP_SERVICES:
        assert "build" in services[name], f"{name} runs the project's own image"


def test_start_order_waits_for_health_and_for_migrations(services):
    assert depends_on(services["migrate"]) == {"db": "service_healthy"}
    for name in [name for name, service in services.items() if "build" in service and name != "migrate"]:
        conditions = depends_on(services[name])
        assert conditions["migrate"] == "service_completed_successfully", name
        assert conditions["redis"] == "service_healthy", name
        assert conditions.get("db", "service_healthy") == "service_healthy", name


def test_migrate_is_one_shot(services):
    # A restart policy would run it again after it exits 0, and web/worker would wait forever.
    assert services["migrate"].get("restart", "no") == "no"
    assert "ports" not in services["migrate"]


def test_web_publishes_port_8000_on_the_hosts_loopback_only(services):
    # Its daphne believes X-Forwarded-For from anyone (--proxy-headers): only a proxy on the host
    # may reach it, or a client would choose the address the failed-login lockout counts by.
    assert [str(port) for port in services["web"]["ports"]] == ["127.0.0.1:8000:8000"]
    assert "ports" not in services["worker"]


def test_workers_can_be_scaled(services):
    # A fixed container name would make `docker compose up --scale worker=N` fail.
    for name in ("worker", "email-worker"):
        assert "container_name" not in services[name]
        assert "ports" not in services[name]
        assert services[name]["stop_grace_period"], f"{name}: RQ's warm shutdown finishes the job in hand"


def test_app_services_share_one_environment_with_the_required_variables(services):
    built = [name for name, service in services.items() if "build" in service]
    assert set(built) >= set(APP_SERVICES)
    env = environment(services["web"])
    for name in built:
        assert environment(services[name]) == env, f"{name} runs with a different environment than web"
    assert set(env) >= REQUIRED_ENV
    assert env["DEBUG"] == "0"
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["MEDIA_ROOT"] == MEDIA_ROOT
    assert re.fullmatch(r"postgres://[^@/]+@db:5432/\w+", env["DATABASE_URL"])
    assert env["EMAIL_URL"] and env["ALLOWED_HOSTS"]


def test_no_secret_key_is_hard_coded(services):
    # The operator must supply it: a key written in the repository is a key everyone knows.
    assert re.fullmatch(r"\$\{SECRET_KEY:\?[^}]+\}", environment(services["web"])["SECRET_KEY"])


def test_database_url_matches_the_postgres_service(services):
    db_env = {key: interpolate(value) for key, value in environment(services["db"]).items()}
    config = environ.Env.db_url_config(interpolate(environment(services["web"])["DATABASE_URL"]))
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"]) == ("db", 5432)
    assert config["NAME"] == db_env["POSTGRES_DB"]
    assert config["USER"] == db_env["POSTGRES_USER"]
    assert config["PASSWORD"] == db_env["POSTGRES_PASSWORD"]


def test_every_variable_set_for_the_app_is_read_by_the_settings(services):
    settings_source = (ROOT / "project" / "settings.py").read_text()
    for name in environment(services["web"]):
        assert f'"{name}"' in settings_source, f"{name} is set in docker-compose.yml but nothing reads it"


def test_web_and_worker_share_the_media_volume(compose, services):
    def media_volume(name: str) -> str:
        for volume in services[name].get("volumes", []):
            source, target = str(volume).split(":")[:2]
            if target == MEDIA_ROOT:
                return source
        raise AssertionError(f"{name} mounts nothing at {MEDIA_ROOT}")

    assert media_volume("web") == media_volume("worker")
    assert media_volume("web") in compose["volumes"], "a named volume, declared at the top level"


def test_the_compose_environment_is_accepted_by_the_settings(services):
    """The settings load with exactly what compose passes, and read the values compose meant."""
    env = {key: interpolate(value) for key, value in environment(services["web"]).items()}
    script = (
        "from django.conf import settings as s; import json; "
        "print(json.dumps({'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS, 'media': str(s.MEDIA_ROOT), "
        "'db': [s.DATABASES['default'][k] for k in ('ENGINE', 'HOST', 'PORT', 'CONN_MAX_AGE')], "
        "'rq': s.RQ_QUEUES['default']['URL'], 'key': s.SECRET_KEY, "
        "'email': getattr(s, 'MAILERS', {}).get('default', {}).get('BACKEND') or s.EMAIL_BACKEND, "
        "'csrf': s.CSRF_TRUSTED_ORIGINS, 'proxy': s.SECURE_PROXY_SSL_HEADER}))"
    )
    child_env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "project.settings", **env}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-startup", "-c", script],
        cwd=ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["debug"] is False
    assert loaded["hosts"] == env["ALLOWED_HOSTS"].split(",")
    assert loaded["media"] == MEDIA_ROOT
    assert loaded["db"][:3] == ["django.db.backends.postgresql", "db", 5432]
    assert loaded["db"][3] == 0, "no persistent connections under ASGI (Django's advice for daphne)"
    assert loaded["rq"] == "redis://redis:6379/0"
    assert loaded["email"] == "django.core.mail.backends.console.EmailBackend"
    assert loaded["key"] == env["SECRET_KEY"]
    # Behind a TLS proxy the operator sets these two; unset, they change nothing.
    assert loaded["csrf"] == [] and loaded["proxy"] is None


# --- the same commands everywhere ----------------------------------------------------------


def test_worker_command_is_the_procfiles(services):
    assert procfile()["worker"] == services["worker"]["command"]
    assert procfile()["email-worker"] == services["email-worker"]["command"]


def test_each_queue_has_its_own_worker(services):
    """The task worker takes only the default queue (emails never get ahead of a task); the email
    worker only the email queue, with RQ's plain worker class instead of the project's TaskWorker
    (which ends the task row of a job whose horse died: email jobs have none)."""
    from django.conf import settings

    assert set(settings.RQ_QUEUES) == {"default", "email"}
    assert settings.RQ["WORKER_CLASS"] == "live_tasks.worker.TaskWorker"
    assert shlex.split(services["worker"]["command"])[3:] == ["default"]
    assert shlex.split(services["email-worker"]["command"])[3:] == ["email", "--worker-class", "rq.Worker"]


def test_every_procfile_process_runs_in_compose_too(services):
    # A process added to the Procfile (say, a scheduler) must not be missing from the containers.
    for name, command in procfile().items():
        assert name in services, f"the Procfile's {name!r} process has no docker-compose service"
        if name != "web":  # the web command differs by its bind address (next test)
            assert services[name]["command"] == command, name


def test_web_command_is_the_procfiles_bound_for_a_container(services):
    # The Procfile serves on loopback at $WEB_PORT for `make run`; a container must listen on every
    # interface at a fixed port. Everything else (program, application, options) is the same.
    local = procfile()["web"]
    assert "-b 127.0.0.1" in local and "${WEB_PORT:-8000}" in local
    assert (
        local.replace("-b 127.0.0.1", "-b 0.0.0.0").replace("${WEB_PORT:-8000}", "8000") == services["web"]["command"]
    )


def test_every_daphne_takes_the_proxys_address_and_listens_where_only_the_proxy_reaches_it(services):
    # Behind the documented nginx, which replaces X-Forwarded-For with the address it sees
    # (tests/test_proxy_lockout.py), --proxy-headers gives each client its own lockout count; without
    # it every client is the proxy. daphne trusts that header from anyone, so each daphne listens
    # on loopback, or in compose's container whose port is published on loopback only (test above).
    (supervisord,) = re.findall(r"^command=(daphne .*)$", (ROOT / "supervisord.conf").read_text(), re.M)
    documented = re.findall(r"`(daphne [^`]*)`", (ROOT / "docs" / "deploy.md").read_text())
    assert documented, "docs/deploy.md shows how to run daphne behind the proxy"
    commands = [("Procfile", procfile()["web"]), ("supervisord.conf", supervisord)]
    commands += [("docs/deploy.md", command) for command in documented]
    commands.append(("docker-compose.yml", services["web"]["command"]))
    for where, command in commands:
        words = shlex.split(command)
        assert "--proxy-headers" in words, where
        bind = words[words.index("-b") + 1]
        # In its container daphne listens on every interface; compose publishes that on loopback.
        assert bind == "127.0.0.1" or where == "docker-compose.yml", where
    assert set(documented) == {procfile()["web"].replace("${WEB_PORT:-8000}", "8000")}, "the Procfile's command"


def test_migrate_command_is_the_makefiles(services):
    makefile = (ROOT / "Makefile").read_text()
    assert f"$(BIN)/{MIGRATE_COMMAND}" in makefile
    assert services["migrate"]["command"] == MIGRATE_COMMAND


# --- Dockerfile and .dockerignore ----------------------------------------------------------


def test_dockerfile_base_image_and_dependencies():
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    runs = [args for kind, args in instructions if kind == "RUN"]
    assert any(re.search(r"\bpip install (.* )?-r requirements\.txt\b", run) for run in runs)
    copies = [args for kind, args in instructions if kind == "COPY"]
    # requirements.txt is copied (and installed) before the code, so code changes reuse that layer.
    assert copies.index("requirements.txt .") < copies.index(". .")


def test_dockerfile_default_command_is_the_compose_web_command(services):
    (cmd,) = [args for kind, args in dockerfile_instructions() if kind == "CMD"]
    assert shlex.join(json.loads(cmd)) == services["web"]["command"] == WEB_COMMAND


def test_dockerfile_runs_as_a_non_root_user():
    instructions = dockerfile_instructions()
    users = [(i, args) for i, (kind, args) in enumerate(instructions) if kind == "USER"]
    assert users, "no USER instruction: the container would run as root"
    position, user = users[-1]
    assert user.split(":")[0] not in ("root", "0")
    assert position < [i for i, (kind, _) in enumerate(instructions) if kind == "CMD"][0]
    # The media directory (the volume's mount point) belongs to that user, so exports can be written.
    assert any(f"chown {user}" in args and MEDIA_ROOT in args for kind, args in instructions if kind == "RUN")


def test_dockerfile_collects_static_files_with_a_dummy_key(tmp_path):
    (collect,) = [args for kind, args in dockerfile_instructions() if kind == "RUN" and "collectstatic" in args]
    words = shlex.split(collect)
    assignments = dict(word.split("=", 1) for word in words[: words.index("python")])
    assert assignments.get("SECRET_KEY"), "a dummy SECRET_KEY for the build step"
    assert words[words.index("python") :] == ["python", "manage.py", "collectstatic", "--noinput"]

    # Run that step as the build runs it (same variables, production static storage), into a
    # temporary STATIC_ROOT: the hashed manifest must build from the repository's static files.
    (tmp_path / "build_settings.py").write_text(f"from project.settings import *\nSTATIC_ROOT = {str(tmp_path)!r}\n")
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
        "DJANGO_SETTINGS_MODULE": "build_settings",
        **assignments,
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]
    assert {"live_tasks/live.js", "css/app.css"} <= set(manifest)
    assert (tmp_path / manifest["live_tasks/live.js"]).is_file()


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image():
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".env", "db.sqlite3", "media", "staticfiles"} <= ignored
    assert not {"requirements.txt", "manage.py", "project", "static", "templates", "*"} & ignored

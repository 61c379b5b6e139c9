"""Test settings: the real settings, pointed at a test Redis database and a file-backed test DB.

The pytest process always uses its own test values (it flushes its Redis database, so it must
never inherit a developer's REDIS_URL). Processes that tests start (worker, daphne) inherit them
through os.environ, plus whatever a test overrides for them (tests/processes.py: child_env).
"""

from __future__ import annotations

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
_CHILD = os.environ.get("TESTS_CHILD_PROCESS") == "1"


def _test_value(name: str, value: str) -> None:
    if _CHILD:
        os.environ.setdefault(name, value)
    else:
        os.environ[name] = value


_OUT = Path(os.environ.setdefault("TEST_OUTPUT_DIR", str(_ROOT / "test-output")))
_OUT.mkdir(parents=True, exist_ok=True)

_test_value("SECRET_KEY", "test-secret-key-not-for-production")
_test_value("DEBUG", "0")
_test_value("REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
# Pub/sub channels ignore Redis database numbers: a per-run prefix keeps runs apart.
_test_value("CHANNEL_LAYER_PREFIX", f"test-{os.getpid()}")
_test_value("MEDIA_ROOT", str(_OUT / "media"))
_test_value("TASK_PROGRESS_INTERVAL", "0.05")
if not _CHILD:
    os.environ.pop("CHANNEL_LAYER_REDIS_URL", None)
    os.environ.pop("REDIS_SENTINELS", None)

from project.settings import *  # noqa: E402,F403
from project.settings import DATABASES  # noqa: E402

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so that worker and daphne processes started by tests can open it.
    DATABASES["default"]["TEST"] = {"NAME": str(_OUT / "test-db.sqlite3")}

# A kind of task that exists only in the tests (tests/library/testapp), in this process and the workers.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.library.testapp.apps.TestKindsConfig"]  # noqa: F405

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
STATIC_ROOT = _OUT / "static"
STATIC_ROOT.mkdir(exist_ok=True)

if os.environ.get("TEST_HOLD_COMMIT_SECONDS"):  # a daphne of tests/exports/test_worker_process.py
    MIDDLEWARE = [*MIDDLEWARE, "tests.middleware.hold_the_commit"]  # noqa: F405

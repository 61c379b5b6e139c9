"""Test settings: the real settings, pointed at a test Redis database and a file-backed test DB.

Values go through os.environ (setdefault) so that the worker and daphne processes that tests
start inherit exactly the same configuration.
"""

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
_OUT = Path(os.environ.setdefault("TEST_OUTPUT_DIR", str(_ROOT / "test-output")))
_OUT.mkdir(parents=True, exist_ok=True)

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
# Pub/sub channels ignore Redis database numbers: a per-run prefix keeps runs apart.
os.environ.setdefault("CHANNEL_LAYER_PREFIX", f"test-{os.getpid()}")
os.environ.setdefault("MEDIA_ROOT", str(_OUT / "media"))
os.environ.setdefault("EXPORT_PROGRESS_INTERVAL", "0.05")

from project.settings import *  # noqa: E402,F403
from project.settings import DATABASES  # noqa: E402

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so that worker and daphne processes started by tests can open it.
    DATABASES["default"]["TEST"] = {"NAME": str(_OUT / "test-db.sqlite3")}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
STATIC_ROOT = _OUT / "static"
STATIC_ROOT.mkdir(exist_ok=True)

"""Benchmark settings: the project's settings, pointed at the benchmarks' own Redis database,
SQLite file, PostgreSQL database and media folder. Only the URLconf differs (a no-op view is
added for the launch benchmark's baseline); everything the product does is left as it is.

Values go through os.environ (setdefault) so daphne, the RQ worker and the load processes that
the benchmarks start share one configuration; `benchmarks.common.bench_env` sets them.
"""

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
_OUT = Path(os.environ.setdefault("BENCH_OUTPUT_DIR", str(_ROOT / "benchmarks-output")))

os.environ.setdefault("SECRET_KEY", "benchmarks-secret-key-not-for-production")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")
os.environ.setdefault("CHANNEL_LAYER_PREFIX", "bench-exports-live")
os.environ.setdefault("MEDIA_ROOT", str(_OUT / "media"))
os.environ.setdefault("DATABASE_URL", f"sqlite:///{_OUT / 'bench.sqlite3'}")
os.environ.setdefault("EMAIL_URL", "dummymail://")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from project.settings import *  # noqa: E402,F403
from project.settings import STORAGES  # noqa: E402

ROOT_URLCONF = "benchmarks.urls"
# No collectstatic for benchmarks; pages are not rendered by any benchmark anyway.
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"

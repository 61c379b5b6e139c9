"""Benchmark settings: the project's, plus a no-op view in the URLs (the launch baseline);
BENCH_CHANNEL_LAYER=list swaps in channels_redis' list-based layer (the live-updates baseline);
BENCH_CHANNEL_LAYER_HOSTS="url,url" gives the layer one host per URL (the sharded benchmark);
BENCH_QUEUE_BACKEND=celery runs the tasks' jobs on Celery (benchmarks/celery_app.py, the broker at
BENCH_CELERY_BROKER_URL) on a queue of the benchmarks' own, instead of RQ's "default"."""

from __future__ import annotations

import os

from benchmarks.common import CELERY_QUEUE as _QUEUE
from project.settings import *  # noqa: F403
from project.settings import CHANNEL_LAYERS, LIVE_TASKS, RQ_QUEUES, STORAGES

ROOT_URLCONF = "benchmarks.urls"
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # no collectstatic
if os.environ.get("BENCH_CHANNEL_LAYER_HOSTS"):  # channels_redis hashes each group's name onto one of them
    _hosts = os.environ["BENCH_CHANNEL_LAYER_HOSTS"].split(",")
    CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [{"address": url} for url in _hosts]
if os.environ.get("BENCH_CHANNEL_LAYER") == "list":
    _config = CHANNEL_LAYERS["default"]["CONFIG"]
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": _config["hosts"], "prefix": _config["prefix"]},
        }
    }

# The Celery side of the overhead and burst benchmarks (their RQ side is the project's own).
CELERY_BROKER_URL = os.environ.get("BENCH_CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # live_tasks.W002: one job per pool child at a time
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # the project's LOGGING stays
# On Celery, LIVE_TASKS["QUEUE"] names in RQ_QUEUES the library's Redis (job records, rate limits).
RQ_QUEUES[_QUEUE] = RQ_QUEUES["default"]
if os.environ.get("BENCH_QUEUE_BACKEND") == "celery":
    LIVE_TASKS = {**LIVE_TASKS, "QUEUE_BACKEND": "celery", "QUEUE": _QUEUE}
    from benchmarks import celery_app  # noqa: E402, F401  # the site's app, as its project/__init__.py loads it

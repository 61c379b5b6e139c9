"""Benchmark settings: the project's, plus a no-op view in the URLs (the launch baseline);
BENCH_CHANNEL_LAYER=list swaps in channels_redis' list-based layer (the live-updates baseline);
BENCH_CHANNEL_LAYER_HOSTS="url,url" gives the layer one host per URL (the sharded benchmark)."""

from __future__ import annotations

import os

from project.settings import *  # noqa: F403
from project.settings import CHANNEL_LAYERS, STORAGES

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

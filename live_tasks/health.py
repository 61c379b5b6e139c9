"""GET /healthz: can this process reach what it needs? For load balancers and compose healthchecks.

Answers 200 when the database, the job queue (Redis, or Celery's broker) and the channel layer all
respond and the
safety net has completed a pass recently (the scheduler is alive), and, with result files in an S3
bucket, the bucket answers this process's key; else 503, with the figures an
operator looks at first: queued jobs and live workers (of the tasks' queue, and on RQ of the site's
other queues, such as "queue" → "email"), and the age of the safety net's last pass. A hung queue
cannot hang the answer: _run gives up after CHECK_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from live_tasks.queue import queue_health
from live_tasks.scheduler import safety_net_last_pass

from .conf import live_settings
from .files import object_storage

logger = logging.getLogger(__name__)

CHECK_TIMEOUT = 2.0


def _check_database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True}


def _check_safety_net() -> dict[str, Any]:
    # Written by `manage.py task_scheduler` after each completed pass (live_tasks/scheduler.py).
    last_pass = safety_net_last_pass()
    age = None if last_pass is None else round(max(0.0, time.time() - last_pass), 1)
    max_age = live_settings.SAFETY_NET_MAX_AGE_SECONDS
    return {"ok": age is not None and age <= max_age, "last_pass_age_seconds": age, "max_age_seconds": max_age}


def _check_storage() -> dict[str, Any]:
    # Only for result files in a bucket (the local disk has nothing to ask): can this process's key
    # reach its bucket? A HEAD of the bucket: refused (wrong key, no bucket) or no answer is a 503.
    storage = object_storage()
    assert storage is not None
    storage.connection.meta.client.head_bucket(Bucket=storage.bucket_name)
    return {"ok": True, "bucket": storage.bucket_name}


async def _check_channel_layer() -> dict[str, Any]:
    layer = get_channel_layer()
    assert layer is not None  # settings.CHANNEL_LAYERS configures the default layer
    await layer.send("healthz.probe", {"type": "healthz.probe"})
    return {"ok": True}


async def _run(name: str, check: Callable[[], Awaitable[dict[str, Any]]]) -> tuple[str, dict[str, Any]]:
    try:
        return name, await asyncio.wait_for(check(), CHECK_TIMEOUT + 1)
    except Exception as exc:
        logger.warning("Health check %s failed: %r", name, exc)
        return name, {"ok": False, "error": type(exc).__name__}


@never_cache
@require_GET
async def healthz(request: HttpRequest) -> JsonResponse:
    checks = [
        _run("database", sync_to_async(_check_database)),
        _run("queue", sync_to_async(queue_health, thread_sensitive=False)),
        _run("channel_layer", _check_channel_layer),
        _run("safety_net", sync_to_async(_check_safety_net, thread_sensitive=False)),
    ]
    if object_storage() is not None:
        checks.append(_run("storage", sync_to_async(_check_storage, thread_sensitive=False)))
    results = dict(await asyncio.gather(*checks))
    healthy = all(result["ok"] for result in results.values())
    return JsonResponse({"status": "ok" if healthy else "unavailable", **results}, status=200 if healthy else 503)

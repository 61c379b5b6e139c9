"""GET /healthz: can this process reach what it needs? For load balancers and compose healthchecks.

Answers 200 when the database, Redis (the job queue) and the channel layer all respond, else 503,
with the figures an operator looks at first: queued jobs and live workers.
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from rq import Worker

from tasks.queue import default_queue

logger = logging.getLogger(__name__)

CHECK_TIMEOUT = 2.0


def _check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True}


def _check_queue() -> dict:
    # The same connection settings as the queue itself (URL, TLS or Sentinel). A hung Redis
    # cannot hang the answer: _run gives up after CHECK_TIMEOUT.
    queue = default_queue()
    return {"ok": True, "queued_jobs": queue.count, "workers": Worker.count(queue.connection)}


async def _check_channel_layer() -> dict:
    await get_channel_layer().send("healthz.probe", {"type": "healthz.probe"})
    return {"ok": True}


async def _run(name: str, check) -> tuple[str, dict]:
    try:
        return name, await asyncio.wait_for(check(), CHECK_TIMEOUT + 1)
    except Exception as exc:
        logger.warning("Health check %s failed: %r", name, exc)
        return name, {"ok": False, "error": type(exc).__name__}


@never_cache
@require_GET
async def healthz(request):
    results = dict(
        await asyncio.gather(
            _run("database", sync_to_async(_check_database)),
            _run("queue", sync_to_async(_check_queue, thread_sensitive=False)),
            _run("channel_layer", _check_channel_layer),
        )
    )
    healthy = all(result["ok"] for result in results.values())
    return JsonResponse({"status": "ok" if healthy else "unavailable", **results}, status=200 if healthy else 503)

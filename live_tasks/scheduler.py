"""The scheduler: the safety net and the periodic upkeep, run in this process on a timer.

`python manage.py task_scheduler` runs it: the safety net every LIVE_TASKS["RECONCILE_INTERVAL_SECONDS"],
result expiry, the pruning of old task rows and the sweep of orphaned upload files hourly. It does
the work itself instead of enqueueing jobs, so the safety net never waits in the job queue behind
the work it guards, and it keeps going through any outage: a pass that fails (Redis or the database
away) is logged, then tried again a few seconds later, for as long as it takes. Each completed
safety-net pass is recorded in Redis, and /healthz reports its age. Two schedulers are harmless:
every step is idempotent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import close_old_connections

from . import stats
from .conf import live_settings
from .files import upload_spools_sweep
from .reconcile import tasks_reconcile
from .redisclients import rq_connection
from .services import tasks_delete_old, tasks_expire

logger = logging.getLogger(__name__)

SAFETY_NET_PASS_KEY = "live_tasks:scheduler:safety-net-last-pass"  # noqa: S105 -- a Redis key, not a secret
RETRY_AFTER_FAILURE_SECONDS = 2.0


@dataclass
class Periodic:
    name: str
    every_seconds: Callable[[], float]
    run: Callable[[], Any]
    on_success: Callable[[], None] | None = None
    next_at: float = 0.0
    failing: bool = field(default=False)


def record_safety_net_pass() -> None:
    rq_connection().set(SAFETY_NET_PASS_KEY, f"{time.time():.3f}")
    stats.count("live_tasks_safety_net_passes")


def safety_net_pass() -> dict[str, int]:
    """One pass of the safety net; what it did is counted for the metrics (by action)."""
    done = tasks_reconcile()
    for action, how_many in done.items():
        stats.count("live_tasks_safety_net_actions", how_many, action=action)
    return done


def safety_net_last_pass() -> float | None:
    """Unix time of the last completed safety-net pass, if any (raises RedisError)."""
    value = rq_connection().get(SAFETY_NET_PASS_KEY)
    return float(value) if value else None


def schedule() -> list[Periodic]:
    return [
        Periodic(
            "safety net",
            lambda: live_settings.RECONCILE_INTERVAL_SECONDS,
            safety_net_pass,
            on_success=record_safety_net_pass,
        ),
        Periodic("result expiry", lambda: 3600, tasks_expire),
        Periodic("old task pruning", lambda: 3600, tasks_delete_old),
        Periodic("orphaned upload sweep", lambda: 3600, upload_spools_sweep),
    ]


def run_due(entries: list[Periodic], now: float) -> None:
    for entry in entries:
        if now < entry.next_at:
            continue
        try:
            close_old_connections()  # a connection broken by a database restart is replaced
            outcome = entry.run()
            if entry.on_success:
                entry.on_success()
        except Exception as exc:
            # Logged once per outage with its traceback, then quietly retried until it passes.
            if not entry.failing:
                logger.exception("Scheduler: %s failed; retrying every %ss", entry.name, RETRY_AFTER_FAILURE_SECONDS)
            else:
                logger.debug("Scheduler: %s still failing: %r", entry.name, exc)
            entry.failing = True
            entry.next_at = now + RETRY_AFTER_FAILURE_SECONDS
            continue
        if entry.failing:
            logger.info("Scheduler: %s works again", entry.name)
            entry.failing = False
        if outcome:
            logger.info("Scheduler: %s: %s", entry.name, outcome)
        entry.next_at = now + entry.every_seconds()


def run_forever(stop: threading.Event, *, tick_seconds: float = 0.5) -> None:
    entries = schedule()
    logger.info("Scheduler started: %s", ", ".join(entry.name for entry in entries))
    while not stop.is_set():
        run_due(entries, time.monotonic())
        stop.wait(tick_seconds)
    logger.info("Scheduler stopped")

"""`manage.py task_scheduler`: the safety net and periodic upkeep of tasks (live_tasks/scheduler.py)."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand

from live_tasks.scheduler import run_forever


class Command(BaseCommand):
    help = "Run the task scheduler: the safety net every few seconds, result expiry hourly. Ctrl-C stops it."

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        run_forever(stop)

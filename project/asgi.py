"""ASGI entry point served by daphne: Django over HTTP, the live notifications over WebSocket."""

from __future__ import annotations

import gc
import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
# This module is loaded only by the ASGI server: pool database connections here (settings.py).
os.environ.setdefault("DATABASE_POOL", "1")
# Build the Django app first: it sets up the app registry that the imports below rely on.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from live_tasks.asgi import websocket_application  # noqa: E402
from project.bodylimit import limit_request_bodies  # noqa: E402

# The live feed at /ws/notifications/ (LIVE_TASKS["WEBSOCKET_PATH"]), behind session authentication
# and the exact Origin check.
application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": websocket_application()})
# daphne takes a request's whole body before the application sees any of it: cap it in daphne.
limit_request_bodies()

# With a thousand open sockets daphne tracks ~250,000 objects, and each full garbage collection
# stopped the event loop for 200-400 ms: the live-update p99 (docs/performance.md). Freeze what start-up
# made (never garbage) out of the collector's reach, and collect the young generation less often.
gc.freeze()
gc.set_threshold(50_000, 20, 20)
# Django runs each request's sync code (middleware, view) in a thread of its own beside the event
# loop that pushes to the sockets: its ASGIHandler enters a new asgiref ThreadSensitiveContext per
# request, and asgiref gives each context a new one-thread executor, with no cap on how many run at
# once. So 50 launches at once run in 50 threads, and whatever requests share (the Redis client, the
# queue) is built once under a lock (redisclients). While a burst keeps those threads busy, the loop
# waits for the GIL up to the switch interval at every step of a push (5 ms by default): hand it over
# sooner (the burst benchmark, docs/performance.md).
sys.setswitchinterval(0.001)

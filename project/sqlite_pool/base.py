"""Django's SQLite backend, with a process's connections kept open between requests: for daphne only.

daphne runs each request's sync code in a thread of its own (project/asgi.py), and Django's
connections are per thread, so CONN_MAX_AGE keeps nothing: every request that touches the
database opened a connection (Django registers its SQL functions on it, runs the PRAGMAs, SQLite
reads the schema) and closed it again, 0.35-0.55 ms of CPU of a launch's ~8 (docs/performance.md,
launch endpoint). Here a closed connection goes back to a per-process list instead, unless a
transaction is open on it, and the next request's thread takes it: what psycopg's pool does for
PostgreSQL (settings.py). Workers fork a work horse per job, and a connection must not cross a
fork: project/asgi.py switches this on (DATABASE_POOL) for the ASGI server alone.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from django.db.backends.sqlite3 import base

# Kept per database file; more than this many idle at once are closed.
MAX_IDLE = 10

_idle: dict[str, list[sqlite3.Connection]] = {}
_lock = threading.Lock()


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> sqlite3.Connection:
        with _lock:
            idle = _idle.get(self.settings_dict["NAME"])
            if idle:
                return idle.pop()
        connection: sqlite3.Connection = super().get_new_connection(conn_params)
        return connection

    def _close(self) -> None:
        connection = self.connection
        # An in-memory database lives as long as its one connection: Django never closes it.
        if connection is not None and not connection.in_transaction and not self.is_in_memory_db():
            with _lock:
                idle = _idle.setdefault(self.settings_dict["NAME"], [])
                if len(idle) < MAX_IDLE:
                    idle.append(connection)
                    return
        super()._close()  # type: ignore[misc]  # BaseDatabaseWrapper._close, not in django-stubs

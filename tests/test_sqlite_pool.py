"""project/sqlite_pool: daphne's SQLite connections are kept open between requests, but never one
left in a transaction, and never more than MAX_IDLE at once."""

from __future__ import annotations

from typing import Any

import pytest

from project.sqlite_pool import base


@pytest.fixture(autouse=True)
def own_databases(django_db_blocker):
    # Files of these tests' own, not the test database: pytest-django need not set anything up.
    with django_db_blocker.unblock():
        yield
    base._idle.clear()


def wrapper_for(path, alias: str = "pooled") -> base.DatabaseWrapper:
    settings: dict[str, Any] = {
        "ENGINE": "project.sqlite_pool",
        "NAME": str(path),
        "OPTIONS": {},
        "TIME_ZONE": None,
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False,
        "AUTOCOMMIT": True,
        "ATOMIC_REQUESTS": False,
        "USER": "",
        "PASSWORD": "",
        "HOST": "",
        "PORT": "",
        "TEST": {},
    }
    return base.DatabaseWrapper(settings, alias)


def test_a_closed_connection_is_taken_again_by_the_next_wrapper(tmp_path):
    first = wrapper_for(tmp_path / "db.sqlite3")
    first.ensure_connection()
    raw = first.connection
    first.close()
    second = wrapper_for(tmp_path / "db.sqlite3")  # another request's thread
    second.ensure_connection()
    assert second.connection is raw
    with second.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    assert second.get_autocommit()
    second.close()
    other = wrapper_for(tmp_path / "other.sqlite3")
    other.ensure_connection()
    assert other.connection is not raw, "kept per database file"
    other.close()


def test_a_connection_closed_in_a_transaction_is_closed_for_good(tmp_path):
    wrapper = wrapper_for(tmp_path / "db.sqlite3")
    wrapper.ensure_connection()
    raw = wrapper.connection
    raw.execute("BEGIN")
    wrapper.close()
    again = wrapper_for(tmp_path / "db.sqlite3")
    again.ensure_connection()
    assert again.connection is not raw
    assert not again.connection.in_transaction
    again.close()


def test_no_more_than_max_idle_are_kept(tmp_path):
    wrappers = [wrapper_for(tmp_path / "db.sqlite3") for _ in range(base.MAX_IDLE + 2)]
    for wrapper in wrappers:
        wrapper.ensure_connection()
    for wrapper in wrappers:
        wrapper.close()
    assert len(base._idle[str(tmp_path / "db.sqlite3")]) == base.MAX_IDLE

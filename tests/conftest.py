from __future__ import annotations

import pytest
from django.test import Client

from tasks.queue import default_queue

from .factories import UserFactory, signed_in_client
from .processes import CapturedSMTP


@pytest.fixture(scope="session", autouse=True)
def clean_test_redis():
    """Tests use their own Redis database number (tests/settings.py); start it empty."""
    default_queue().connection.flushdb()
    yield
    default_queue().connection.flushdb()


@pytest.fixture
def queue():
    q = default_queue()
    q.connection.flushdb()
    return q


@pytest.fixture
def email_queue(queue):
    """The account emails' queue (same Redis database, flushed by `queue`)."""
    from accounts.services import email_queue

    return email_queue()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def client_for():
    return signed_in_client


@pytest.fixture
def user_client(user, client_for) -> Client:
    return client_for(user)


@pytest.fixture
def smtp_server():
    with CapturedSMTP() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_limits():
    """Rate-limit counters and socket counts are keyed by user id, which a new test may reuse."""
    connection = default_queue().connection
    for pattern in ("ratelimit:*", "*:sockets:user:*"):
        keys = list(connection.scan_iter(pattern, count=1000))
        if keys:
            connection.delete(*keys)

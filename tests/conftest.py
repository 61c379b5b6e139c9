from __future__ import annotations

import pytest
from django.test import Client

from .factories import signed_in_client
from .library.fixtures import bucket, clean_test_redis, fresh_limits, other_user, queue, s3_server, user
from .processes import CapturedSMTP


@pytest.fixture
def email_queue(queue):
    """The account emails' queue (same Redis database, flushed by `queue`)."""
    from accounts.services import email_queue

    return email_queue()


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

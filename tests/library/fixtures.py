"""pytest fixtures of the library's tests, which the site's tests/conftest.py uses too."""

from __future__ import annotations

import uuid

import pytest
import redis
from django.conf import settings

from live_tasks.queue.rq import default_queue

from .helpers import UserFactory, purge_queued_jobs, signed_in_client


@pytest.fixture(scope="session", autouse=True)
def clean_test_redis():
    """Tests use their own Redis database number (the settings say which); start it empty, and alone.

    Two test sessions on one Redis database (every run defaults to the same one) take each other's
    jobs and flush each other's queue: a job enqueued by one is run by the other's worker against
    the other's database, where its task does not exist, so it stays `queued` here while this
    session's burst worker finds the queue empty and exits 0. So a session holds one connection
    named after its database for its whole life, and refuses to start while another holds one:
    unlike a key, the name survives FLUSHDB and goes away with the process, however it ends.
    """
    connection = default_queue().connection
    claim = redis.Redis.from_url(settings.REDIS_URL)  # its pool's one connection stays open to the end
    db = claim.connection_pool.connection_kwargs.get("db", 0)
    claim_name = f"test-session-db{db}"
    claim.client_setname(claim_name)
    mine = claim.client_id()
    # Named first, then looked for: of two sessions starting at once, the later-connected leaves.
    earlier = [c for c in claim.client_list() if c.get("name") == claim_name and int(c["id"]) < mine]
    if earlier:
        pytest.exit(
            f"Another test session is using Redis database {db} (from {earlier[0]['addr']}); the two would"
            " take each other's jobs. Set TEST_REDIS_URL to a database of its own for this run.",
            returncode=3,
        )
    connection.flushdb()
    purge_queued_jobs()  # on Celery, the broker's queue (the session's own: tests/library/settings.py)
    yield
    connection.flushdb()
    purge_queued_jobs()
    claim.close()


@pytest.fixture
def queue():
    """An empty queue and library Redis for the test, on the session's backend. The RQ queue object
    is for the site's tests (which run on RQ); the library's read the queue through helpers.queued_jobs."""
    q = default_queue()
    q.connection.flushdb()
    purge_queued_jobs()
    return q


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
def user_client(user, client_for):
    return client_for(user)


@pytest.fixture(autouse=True)
def fresh_limits():
    """Rate-limit counters and socket counts are keyed by user id, which a new test may reuse."""
    connection = default_queue().connection
    for pattern in ("ratelimit:*", "*:sockets:user:*"):
        keys = list(connection.scan_iter(pattern, count=1000))
        if keys:
            connection.delete(*keys)


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 server for the session (tests/library/s3server.py): SeaweedFS on loopback, started
    here unless TEST_S3_ENDPOINT names one that runs already, and stopped at the end."""
    from .s3server import start_s3_server

    server = start_s3_server()
    yield server
    server.stop()


@pytest.fixture
def bucket(s3_server, settings):
    """A new, empty bucket of the test's own, as the default storage (settings.STORAGES); its name."""
    name = f"t-{uuid.uuid4().hex[:16]}"
    client = s3_server.client()
    client.create_bucket(Bucket=name)
    settings.STORAGES = {**settings.STORAGES, "default": s3_server.storage_options(name)}
    yield name
    for key in s3_server.keys(name):
        client.delete_object(Bucket=name, Key=key)
    client.delete_bucket(Bucket=name)

"""The process's Redis client and queue (redisclients): one of each, whatever the threads and forks.

daphne runs each request's sync view in a thread of its own, so the first requests after a start
ask for the client together. A builder that several of them ran would leave clients that own
their pools behind, and one collected while another thread uses its pool closes it under that
thread: `ValueError: I/O operation on closed file`, a 500.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import django_rq
import pytest

from live_tasks import ratelimits, redisclients
from live_tasks.queue.rq import default_queue, task_job_fetch
from live_tasks.ratelimits import Limit

THREADS = 32
ROUNDS = 40


@pytest.fixture
def nothing_built_yet():
    """This process as a freshly started daphne is: no client and no queue built yet, and threads
    switched as often as the interpreter allows, so that they interleave inside the builders."""
    ratelimits._connection.cache_clear()
    default_queue.cache_clear()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


@pytest.fixture
def builds(monkeypatch):
    """Counts the clients and queues that django-rq builds (each real, on the test Redis)."""
    counts = {"get_connection": 0, "get_queue": 0}
    for name in counts:
        real = getattr(django_rq, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            counts[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(django_rq, name, counted)
    return counts


def test_threads_asking_at_once_share_one_client_and_one_pool(nothing_built_yet, builds):
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []
    pools: set[int] = set()

    def first_requests(index: int) -> None:
        barrier.wait()
        try:
            for round_ in range(ROUNDS):
                Limit("hammer", 10**6, 60).hit(index)  # a launch's rate limit: a pipeline
                assert task_job_fetch(f"no-such-job-{index}-{round_}") is None  # a round trip on the queue
                pools.add(id(default_queue().connection.connection_pool))
                pools.add(id(ratelimits._connection().connection_pool))
        except BaseException as exc:  # ValueError on a pool closed under this thread, above all
            errors.append(exc)

    threads = [threading.Thread(target=first_requests, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert builds == {"get_connection": 1, "get_queue": 1}, "one client and one queue for the process"
    assert default_queue().connection is ratelimits._connection(), "the queue and the limits share the client"
    assert len(pools) == 1


def test_a_closed_or_collected_client_never_closes_the_pool(nothing_built_yet):
    client = ratelimits._connection()
    pool = client.connection_pool
    connection = pool.get_connection()  # another thread's, waiting for its reply
    try:
        connection.send_command("PING")
        client.close()  # what redis-py's __del__ does when a client is collected
        assert connection.read_response() in (b"PONG", "PONG"), "a connection in use stays open"
    finally:
        pool.release(connection)
    assert client.ping()


def test_a_forked_child_gets_its_own_connections_and_can_build(nothing_built_yet):
    """The worker forks a work horse per job: the horse uses the same client on new sockets, and a
    build that another thread had under way at the fork cannot leave the horse waiting forever."""
    parent_pool = ratelimits._connection().connection_pool
    assert ratelimits._connection().ping()
    default_queue.cache_clear()
    building = default_queue._lock
    building.acquire()  # another thread of the worker is inside the build when the fork happens
    try:
        pid = os.fork()
        if pid == 0:  # the child: exit codes tell the parent what went wrong
            signal.alarm(30)  # a child stuck on the lock dies of SIGALRM instead of hanging the test
            code = 1
            try:
                queue = default_queue()  # would wait forever on the inherited, held lock
                code = 2
                assert queue.connection.ping()
                code = 3
                assert queue.connection.connection_pool is parent_pool
                assert parent_pool.pid == os.getpid(), "redis-py's pool started afresh in the child"
                code = 0
            finally:
                os._exit(code)
    finally:
        building.release()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert parent_pool.pid == os.getpid() and ratelimits._connection().ping(), "the parent's sockets still work"
    assert redisclients.rq_connection() is ratelimits._connection()

"""Launch endpoint.

POST /exports/ (JSON client: 202 and the task) through one daphne process; every request is a
different, freshly created user with their own session, so each inserts a task and enqueues a real
RQ job. Concurrency 1 for latency, 20 keep-alive connections for throughput; the baseline is a
no-op view on the same server behind the same middleware, sent the same cookies. Load comes from
this script over loopback; daphne's CPU per request is read from /proc.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections import Counter
from typing import Any

from benchmarks.common import (
    cpu_seconds,
    delete_users,
    flush_redis,
    percentile,
    save,
    start,
    target,
    users_with_sessions,
)

REQUESTS, SMOKE_REQUESTS = (300, 1000), (20, 40)  # at concurrency 1, at concurrency 20
CONCURRENCY, WARMUP = 20, 20
ENDPOINTS = {"POST /exports/": "/exports/", "no-op view (same middleware)": "/bench/noop/"}
REQUEST = (
    "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\nContent-Length: 0\r\n"
    "Cookie: sessionid={key}; csrftoken={csrf}\r\nX-CSRFToken: {csrf}\r\n\r\n"
)


async def post_all(port: int, path: str, keys: list[str], concurrency: int) -> tuple[list[float], Counter, float]:
    """Each key's request once, over `concurrency` keep-alive connections: latencies ms, statuses, seconds."""
    keys, latencies, statuses, csrf = list(keys), [], Counter[str](), "b" * 32

    async def connection() -> None:
        writer = None
        while keys:
            request, began = REQUEST.format(path=path, port=port, key=keys.pop(), csrf=csrf), time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(request.encode())
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
                # daphne's answers always carry Content-Length.
                await reader.readexactly(int(re.search(rb"(?i)content-length: *(\d+)", head)[1]))  # type: ignore[index]
            except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                statuses[type(exc).__name__] += 1
                writer = None
                continue
            latencies.append(1000 * (time.perf_counter() - began))
            statuses[head[9:12].decode()] += 1
        if writer is not None:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return latencies, statuses, time.perf_counter() - began


def load(port: int, pid: int, path: str, keys: list[str], concurrency: int) -> tuple[list[float], str, float, float]:
    """post_all, and the CPU time daphne spent meanwhile."""
    cpu = cpu_seconds(pid)
    latencies, statuses, seconds = asyncio.run(post_all(port, path, keys, concurrency))
    counts = ", ".join(f"{n} × {status}" for status, n in sorted(statuses.items()))
    return latencies, counts, seconds, cpu_seconds(pid) - cpu


def main() -> None:
    args = start(__doc__, database="sqlite")
    from django.db import connection

    from tests.processes import daphne

    n1, n20 = SMOKE_REQUESTS if args.smoke else REQUESTS
    keys = [key for _, key in users_with_sessions("bench-launch-", WARMUP + n1 + n20)]
    warmup, c1, c20 = keys[:WARMUP], keys[WARMUP : WARMUP + n1], keys[WARMUP + n1 :]
    rows: list[dict[str, Any]] = []
    with daphne(dict(os.environ)) as (port, proc):
        for path in ENDPOINTS.values():  # the first requests of a process import and connect
            load(port, proc.pid, path, warmup, 1)
        # The project needs a fresh user per request; the no-op reads no session and reuses the keys.
        for label, path in ENDPOINTS.items():
            c1_ms, c1_statuses, _, _ = load(port, proc.pid, path, c1, 1)
            c20_ms, c20_statuses, seconds, cpu = load(port, proc.pid, path, c20, CONCURRENCY)
            rows.append(
                {
                    "database": connection.display_name,
                    "endpoint": label,
                    "c1 p50 ms": percentile(c1_ms, 50),
                    "c1 p99 ms": percentile(c1_ms, 99),
                    "c20 req/s": len(c20_ms) / seconds,
                    "c20 p50 ms": percentile(c20_ms, 50),
                    "c20 p99 ms": percentile(c20_ms, 99),
                    "daphne CPU ms per request (c20)": 1000 * cpu / len(c20),
                    "daphne busy % (c20)": 100 * cpu / seconds,  # near 100: the req/s is daphne's limit
                    "statuses c1 / c20": f"{c1_statuses} / {c20_statuses}",
                }
            )
    delete_users("bench-launch-")
    flush_redis()  # the jobs enqueued
    (project, noop), at = rows, connection.display_name
    # One daphne process is CPU-bound: where it is the limit, req/s is the inverse of its CPU per
    # request. That ratio holds on a shared machine, where the no-op's req/s may be limited elsewhere.
    cpu_share = noop["daphne CPU ms per request (c20)"] / project["daphne CPU ms per request (c20)"]
    targets = [
        target(f"c1 p99 ms ({at})", project["c1 p99 ms"], "≤", 25),
        target(f"c20 throughput as a share of the no-op's, by daphne CPU per request ({at})", cpu_share, "≥", 0.5),
    ]
    save(args, f"launch-{args.database}", __doc__, {"": rows}, targets)


if __name__ == "__main__":
    main()

"""Socket capacity.

Idle signed-in sockets (each its own user and session) on one daphne process, held by this script,
connecting 50 at a time: daphne's RSS growth over its RSS with 10 warm-up sockets, read once they
are idle. Then, on a fresh daphne, the first stage's number of sockets connecting all at once: the
errors. Baseline: a consumer that only accepts (`benchmarks/asgi.py`), behind the project's own
Origin check and session authentication.
"""

from __future__ import annotations

import asyncio
import os

from benchmarks.common import MIB, close_sockets, delete_users, open_sockets, save, start, target, users_with_sessions

STAGES, SMOKE_STAGES, WARMUP, SETTLE = [1000, 5000], [10, 20], 10, 2.0
CONSUMERS = {
    "project consumer": ("project.asgi:application", "/ws/notifications/"),
    "no-op consumer (accept only)": ("benchmarks.asgi:application", "/ws/bench-noop/"),
}


async def stages(port: int, pid: int, path: str, keys: list[str], sizes: list[int], settle: float) -> list[dict]:
    import psutil

    held = (await open_sockets(port, path, keys[:WARMUP], 0))[0]
    await asyncio.sleep(settle)
    base, rows = psutil.Process(pid).memory_info().rss, []
    for size in sizes:
        sockets, errors, seconds = await open_sockets(port, path, keys[len(held) : WARMUP + size], 50)
        held += sockets
        await asyncio.sleep(settle)
        growth, connected = psutil.Process(pid).memory_info().rss - base, sum(ws is not None for ws in held) - WARMUP
        rows.append(
            {
                "sockets": size,
                "connecting": "50 at a time",
                "connected": connected,
                "errors": sum(errors.values()),
                "connect s": seconds,
                "daphne RSS growth MiB": growth / MIB,
                "KiB per socket": growth / 1024 / connected,
            }
        )
    await close_sockets(held)
    return rows


async def burst(port: int, path: str, keys: list[str]) -> dict:
    await close_sockets((await open_sockets(port, path, keys[:WARMUP], 0))[0])
    sockets, errors, seconds = await open_sockets(port, path, keys[WARMUP:], 0)
    await close_sockets(sockets)
    return {
        "sockets": len(keys) - WARMUP,
        "connecting": "all at once, fresh daphne",
        "connected": sum(ws is not None for ws in sockets),
        "errors": sum(errors.values()),
        "connect s": seconds,
        "error kinds": ", ".join(f"{n} × {kind}" for kind, n in errors.items()) or None,
    }


def main() -> None:
    args = start(__doc__, database="postgres")
    from django.db import connection

    from tests.processes import daphne

    sizes = SMOKE_STAGES if args.smoke else STAGES
    keys = [key for _, key in users_with_sessions("bench-idle-", WARMUP + sizes[-1])]
    rows = []
    for consumer, (app, path) in CONSUMERS.items():
        label = {"consumer": consumer, "database": connection.display_name}
        with daphne(dict(os.environ), app=app) as (port, proc):
            settle = SETTLE / 10 if args.smoke else SETTLE
            rows += [label | row for row in asyncio.run(stages(port, proc.pid, path, keys, sizes, settle))]
        with daphne(dict(os.environ), app=app) as (port, proc):
            rows.append(label | asyncio.run(burst(port, path, keys[: WARMUP + sizes[0]])))
    delete_users("bench-idle-")
    targets = [
        target(f"KiB per idle socket at {row['sockets']:,}", row["KiB per socket"], "<", 60)
        for row in rows
        if row["consumer"] == "project consumer" and "KiB per socket" in row
    ]
    save(args, "sockets", __doc__, {"": rows}, targets)


if __name__ == "__main__":
    main()

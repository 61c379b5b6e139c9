"""WebSocket load generator: a separate process holding many authenticated sockets on loopback.

Driven line by line on stdin by a benchmark driver; each command's reply is one JSON line on
stdout. Every socket is its own user, authenticated with that user's real session cookie.

    connect START END CONCURRENCY   open sockets for clients[START:END] (CONCURRENCY at a time,
                                    0 = all at once); each must receive its snapshot
    finals                          count the final states received live; for each socket that
                                    missed its final state, reconnect and read the snapshot
    stats                           messages and latencies received so far
    close                           close every socket and exit

Usage: python -m benchmarks.ws_load PORT CLIENTS_JSON [PATH]
(PATH defaults to /ws/notifications/, whose first message must be the snapshot; any other path is
the no-op baseline consumer, which sends nothing.)
CLIENTS_JSON is a file with [[user_id, session_key, task_id_or_null], ...].
Latency of a message = monotonic clock at receipt - `bench_t` (the publisher's monotonic clock
right before it called publish; CLOCK_MONOTONIC is one clock for every process of the machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sys
import time
from collections import Counter

import orjson
from websockets.asyncio.client import connect

from benchmarks.common import raise_open_files_limit

OPEN_TIMEOUT = 30.0


class Client:
    def __init__(self, user_id: int, session_key: str, task_id: str | None) -> None:
        self.user_id, self.session_key, self.task_id = user_id, session_key, task_id
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.final_live = False
        self.received = 0


class Load:
    def __init__(self, port: int, clients: list[Client], path: str, expect_snapshot: bool) -> None:
        self.expect_snapshot = expect_snapshot
        self.url = f"ws://127.0.0.1:{port}{path}"
        self.origin = f"http://127.0.0.1:{port}"
        self.clients = clients
        self.latencies: list[float] = []  # seconds
        self.sent_at: list[float] = []  # the publisher's clock, for a latency time series
        self.received = 0
        self.errors: Counter[str] = Counter()

    async def open(self, client: Client):
        return await connect(
            self.url,
            origin=self.origin,
            additional_headers={"Cookie": f"sessionid={client.session_key}"},
            proxy=None,
            open_timeout=OPEN_TIMEOUT,
            ping_interval=None,  # daphne pings idle sockets itself; replies are automatic
            max_queue=None,
        )

    async def open_and_read_snapshot(self, client: Client):
        ws = await self.open(client)
        if self.expect_snapshot:
            message = orjson.loads(await asyncio.wait_for(ws.recv(), OPEN_TIMEOUT))
            if message.get("type") != "snapshot":
                await ws.close()
                raise ValueError(f"first message is not a snapshot: {message}")
        return ws

    async def connect_one(self, client: Client, gate: asyncio.Semaphore | None) -> bool:
        try:
            if gate is None:
                ws = await self.open_and_read_snapshot(client)
            else:
                async with gate:
                    ws = await self.open_and_read_snapshot(client)
        except Exception as exc:
            self.errors[type(exc).__name__] += 1
            return False
        client.ws = ws
        client.reader = asyncio.create_task(self.read(client))
        return True

    async def read(self, client: Client) -> None:
        ws = client.ws
        try:
            async for raw in ws:
                now = time.monotonic()
                self.received += 1
                client.received += 1
                message = orjson.loads(raw)
                task = message.get("task") or {}
                sent = task.get("bench_t")
                if sent is not None:
                    self.latencies.append(now - sent)
                    self.sent_at.append(sent)
                if task.get("status") == "succeeded" and task.get("id") == client.task_id:
                    client.final_live = True
        except Exception as exc:  # a dropped socket counts as an error, not a crash
            self.errors[f"read {type(exc).__name__}"] += 1

    async def connect(self, start: int, end: int, concurrency: int) -> dict:
        gate = asyncio.Semaphore(concurrency) if concurrency else None
        errors_before = sum(self.errors.values())
        started = time.monotonic()
        results = await asyncio.gather(*(self.connect_one(c, gate) for c in self.clients[start:end]))
        return {
            "connected": sum(results),
            "errors": sum(self.errors.values()) - errors_before,
            "error_kinds": dict(self.errors),
            "seconds": time.monotonic() - started,
        }

    async def finals(self) -> dict:
        """Final states: received live, else recovered from a fresh socket's snapshot, else missed."""
        with_task = [c for c in self.clients if c.ws is not None and c.task_id]
        live = sum(c.final_live for c in with_task)
        recovered = missed = 0
        for client in (c for c in with_task if not c.final_live):
            try:
                ws = await self.open(client)
                snapshot = orjson.loads(await asyncio.wait_for(ws.recv(), OPEN_TIMEOUT))
                await ws.close()
            except Exception as exc:
                self.errors[f"reconnect {type(exc).__name__}"] += 1
                missed += 1
                continue
            states = {t["id"]: t["status"] for t in snapshot.get("tasks", [])}
            if states.get(client.task_id) == "succeeded":
                recovered += 1
            else:
                missed += 1
        return {"tasks": len(with_task), "final_live": live, "final_recovered": recovered, "final_missed": missed}

    def stats(self) -> dict:
        return {
            "received": self.received,
            # Sockets with a task that connected: only their messages can be counted as lost.
            "task_sockets": sum(1 for c in self.clients if c.ws is not None and c.task_id),
            "latencies": self.latencies,
            "sent_at": self.sent_at,
            "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors),
        }

    async def close(self) -> None:
        open_clients = [c for c in self.clients if c.ws is not None]
        await asyncio.wait_for(
            asyncio.gather(*(c.ws.close() for c in open_clients), return_exceptions=True), timeout=30
        )
        for client in open_clients:
            client.reader.cancel()


async def serve(load: Load) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def reply(payload: dict) -> None:
        sys.stdout.write(json.dumps(payload) + "\n")
        sys.stdout.flush()

    reply({"ready": True})
    while line := (await reader.readline()).decode().strip():
        command, *args = line.split()
        if command == "connect":
            reply(await load.connect(*(int(a) for a in args)))
            # The load generator's own collector must not pause the receipt of messages for long:
            # what exists now (the sockets) is kept out of its reach.
            gc.freeze()
        elif command == "finals":
            reply(await load.finals())
        elif command == "stats":
            reply(load.stats())
        elif command == "close":
            with contextlib.suppress(TimeoutError):
                await load.close()
            reply({"closed": True})
            return
        else:
            reply({"error": f"unknown command {command!r}"})


def main() -> None:
    raise_open_files_limit()
    port, clients_file = int(sys.argv[1]), sys.argv[2]
    path = sys.argv[3] if len(sys.argv) > 3 else "/ws/notifications/"
    expect_snapshot = path == "/ws/notifications/"  # the baseline's no-op consumer sends nothing
    with open(clients_file) as fh:
        clients = [Client(*entry) for entry in json.load(fh)]
    asyncio.run(serve(Load(port, clients, path, expect_snapshot)))


if __name__ == "__main__":
    main()

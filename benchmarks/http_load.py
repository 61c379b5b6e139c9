"""HTTP load generator: a separate process sending POSTs to one daphne on loopback.

Every request carries a different user's real session cookie (fresh user, fresh session), a CSRF
cookie and header, and asks for JSON. CONCURRENCY keep-alive connections each send their next
request as soon as the previous answer is read. Prints one result line: status counts, each
request's latency and the wall time.

Usage: python -m benchmarks.http_load PORT PATH CONCURRENCY SESSIONS_JSON START COUNT
"""

from __future__ import annotations

import asyncio
import json
import secrets
import string
import sys
import time
from collections import Counter

from benchmarks.common import emit_result, raise_open_files_limit

CSRF_TOKEN = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
TIMEOUT = 30.0


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        await reader.readuntil(b"\r\n")
    else:
        body = await reader.read()
    return status, body


async def worker(port: int, path: str, keys: list[str], latencies: list[float], statuses: Counter) -> None:
    reader = writer = None
    while keys:
        key = keys.pop()
        request = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n"
            f"Cookie: sessionid={key}; csrftoken={CSRF_TOKEN}\r\nX-CSRFToken: {CSRF_TOKEN}\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        started = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
            writer.write(request)
            status, _ = await asyncio.wait_for(read_response(reader), TIMEOUT)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            statuses[type(exc).__name__] += 1
            if writer is not None:
                writer.close()
            reader = writer = None
            continue
        latencies.append(time.perf_counter() - started)
        statuses[str(status)] += 1
    if writer is not None:
        writer.close()


async def run(port: int, path: str, concurrency: int, keys: list[str]) -> dict:
    latencies: list[float] = []
    statuses: Counter = Counter()
    keys = list(reversed(keys))
    started = time.perf_counter()
    await asyncio.gather(*(worker(port, path, keys, latencies, statuses) for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    return {"statuses": dict(statuses), "latencies": latencies, "seconds": seconds, "requests": len(latencies)}


def main() -> None:
    raise_open_files_limit()
    port, path, concurrency, sessions_file, start, count = sys.argv[1:7]
    with open(sessions_file) as fh:
        keys = [key for _, key in json.load(fh)][int(start) : int(start) + int(count)]
    emit_result(asyncio.run(run(int(port), path, int(concurrency), keys)))


if __name__ == "__main__":
    main()

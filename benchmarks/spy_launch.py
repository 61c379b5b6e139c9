"""py-spy on daphne during benchmarks/launch.py's c20 load, one profile per endpoint (not a benchmark of record).

python -m benchmarks.spy_launch --database sqlite   # writes OUT/spy-launch-<db>-<endpoint>.txt (py-spy raw)
"""

from __future__ import annotations

import os
import subprocess

from benchmarks.common import OUT, delete_users, flush_redis, start, users_with_sessions
from benchmarks.launch import CONCURRENCY, ENDPOINTS, WARMUP, load


def main() -> None:
    args = start(__doc__, database="sqlite")
    from tests.processes import daphne

    n = 1000
    keys = [key for _, key in users_with_sessions("bench-launch-", WARMUP + 2 * n)]
    warmup, rest = keys[:WARMUP], keys[WARMUP:]
    with daphne(dict(os.environ)) as (port, proc):
        for path in ENDPOINTS.values():
            load(port, proc.pid, path, warmup, 1)
        for (label, path), batch in zip(ENDPOINTS.items(), (rest[:n], rest[n:]), strict=True):
            name = "launch" if path == "/exports/" else "noop"
            out = OUT / f"spy-launch-{args.database}-{name}.txt"
            spy = subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "--pid",
                    str(proc.pid),
                    "--rate",
                    "200",
                    "--nonblocking",
                    "--gil",
                    "--format",
                    "raw",
                    "-o",
                    str(out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            _, statuses, seconds, cpu = load(port, proc.pid, path, batch, CONCURRENCY)
            spy.send_signal(2)
            spy.wait()
            print(
                f"{label}: {statuses}, {len(batch) / seconds:.1f} req/s, "
                f"{1000 * cpu / len(batch):.2f} ms CPU/request -> {out}"
            )
    delete_users("bench-launch-")
    flush_redis()


if __name__ == "__main__":
    main()

"""The benchmarks must not rot: their smoke mode runs every one of them, tiny, and each writes its
figures as JSON beside the baseline measured with them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.common import postgres_reachable

# The benchmarks make their own databases (SQLite files and bench* on PostgreSQL), and are tools
# beside the product: checked once, in `make test` (not again on PostgreSQL or Django 6.1).
pytestmark = [pytest.mark.slow, pytest.mark.own_database, pytest.mark.tools]

ROOT = Path(__file__).resolve().parent.parent
EXPORT = [
    "project posts/s",
    "floor posts/s",
    "naive posts/s",
    "project ÷ floor time",
    "project peak RSS MiB",
    "floor peak RSS MiB",
    "naive peak RSS MiB",
]
IMPORT = ["project posts/s", "floor posts/s", "project ÷ floor time", "project peak RSS MiB"]
LAUNCH = ["c1 p50 ms", "c1 p99 ms", "c20 req/s", "c20 p99 ms", "daphne CPU ms per request (c20)"]
# Per results file: the column naming each row, the rows (project first, then its baselines), the figures.
EXPECTED = {
    "export-sqlite": ("posts", [100, 500], EXPORT),
    "export-postgres": ("posts", [100, 500], EXPORT),
    "import-sqlite": ("posts", [100, 500], IMPORT),
    "import-postgres": ("posts", [100, 500], IMPORT),
    "live": (
        "delivery",
        ["project (RedisPubSubChannelLayer)", "default RedisChannelLayer", "polling /api/tasks/ every 10 s (computed)"],
        ["p50 ms", "p99 ms", "max ms", "progress lost", "finals missed", "connect errors", "daphne CPU s"],
    ),
    "publish": (
        "method",
        [
            "project: publish_task_update",
            "async_to_sync(layer.group_send) per group",
            "redis-py PUBLISH, one connection (floor)",
        ],
        ["per update ms", "CPU per update ms", "Redis connections opened"],
    ),
    "launch-sqlite": ("endpoint", ["POST /exports/", "no-op view (same middleware)"], LAUNCH),
    "launch-postgres": ("endpoint", ["POST /exports/", "no-op view (same middleware)"], LAUNCH),
    "sockets": ("consumer", ["project consumer", "no-op consumer (accept only)"], ["KiB per socket", "errors"]),
    "burst": (
        "queue",
        ["RQ", "Celery"],
        ["exports", "launch p99 ms", "final push p99 ms (all)", "makespan s", "exports/s", "floor makespan s"],
    ),
    "sharded": (
        "channel layer",
        ["2 Redis shards", "1 Redis (baseline)"],
        ["KiB per socket", "final push p50 ms", "final push p99 ms", "finals missed after the reconnect snapshot"],
    ),
    "overhead": ("phase", None, ["RQ p50 ms", "Celery p50 ms"]),
    "export-email": (
        "variant",
        ["baseline: read whole, attached raw", "project"],
        ["email as sent MiB", "peak RSS growth while sending MiB"],
    ),
    "longposts": (
        "variant",
        [
            "baseline: every post whole, overflow-wrap: anywhere",
            "every post whole, overflow-wrap: break-word",
            "project: /posts/",
        ],
        ["load and layout s"],
    ),
    "storage": (
        "task",
        ["export", "import"],
        ["bucket s", "disk s (floor)", "bucket ÷ disk time", "bucket peak RSS MiB", "disk peak RSS MiB"],
    ),
}


def test_smoke_mode_runs_every_benchmark_and_writes_its_figures():
    out_dir = Path(os.environ.get("TEST_OUTPUT_DIR", ROOT / "test-output")) / "benchmarks-smoke"
    # The benchmarks choose their own settings, databases (bench*) and Redis database (12).
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    env["BENCH_OUTPUT_DIR"] = str(out_dir)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-6000:]

    # Without PostgreSQL the benchmarks run on SQLite only (benchmarks/__main__.py).
    expected = {name: e for name, e in EXPECTED.items() if postgres_reachable() or not name.endswith("-postgres")}
    for name, (key, labels, figures) in expected.items():
        record = json.loads((out_dir / "results" / f"{name}.json").read_text())
        rows = record["tables"][""]
        if labels is not None:
            assert list(dict.fromkeys(row[key] for row in rows)) == labels, name
        for figure in figures:  # every figure measured for the project's rows, numbers throughout
            values = [row[figure] for row in rows if row.get(figure) is not None]
            assert values and all(isinstance(v, int | float) for v in values), (name, figure)
            assert rows[0].get(figure) is not None, (name, figure)
        assert record["targets"] and all(t["value"] is not None for t in record["targets"]), name
    job = json.loads((out_dir / "results" / "publish.json").read_text())["tables"][
        "A real export job, in a fresh process:"
    ]
    assert job[0]["outcome"] == "succeeded" and job[0]["Redis connections opened"] >= 1
    assert json.loads((out_dir / "results" / "live.json").read_text())["series"]["latency quantiles ms"]
    storage = json.loads((out_dir / "results" / "storage.json").read_text())["tables"]
    downloads = storage["Downloads of the largest export's file, one at a time:"]
    assert [row["download"].split(" ")[0] for row in downloads] == ["redirect", "streamed", "streamed", "presigned"]
    for figure in ("first byte p50 ms", "total p50 s", "total p50 ÷ floor"):
        assert all(isinstance(row[figure], float) for row in downloads), figure
    for figure in ("daphne CPU s per download", "daphne peak RSS growth MiB"):
        assert all(isinstance(row[figure], float) for row in downloads[:3]), figure
    burst = json.loads((out_dir / "results" / "burst.json").read_text())["tables"]
    assert [row["exports"] for row in burst[""]] == [4, 4] and [row["succeeded"] for row in burst[""]] == [4, 4]
    assert [row["floor"].split(" ")[0] for row in burst["Floors, measured in the same run:"]] == ["RQ", "Celery", "the"]
    workers = json.loads((out_dir / "results" / "overhead.json").read_text())["tables"]
    processes = next(rows for caption, rows in workers.items() if caption.startswith("The worker processes"))
    assert [row["queue"] for row in processes] == ["RQ", "Celery"]
    assert processes[1]["job processes forked"] == 0 < processes[0]["job processes forked"]
    report = (out_dir / "BENCHMARKS-smoke.md").read_text()
    assert "## Export throughput and memory" in report and "| POST /exports/ |" in report

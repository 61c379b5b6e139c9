"""The benchmarks of issue #6 must not rot: their smoke mode runs every one of them, tiny."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent

# Each benchmark's section, the project's figures and the baseline measured beside them.
EXPECTED = {
    "## 1. Export throughput and memory": ["project posts/s", "floor posts/s", "naive posts/s", "project peak RSS"],
    "## 2. Live progress latency and loss": [
        "**project (RedisPubSubChannelLayer)**",
        "default RedisChannelLayer",
        "polling /api/tasks/ every 10 s",
    ],
    "## 3. Publishing cost in the worker": [
        "**project: `publish_task_update`**",
        "`async_to_sync(layer.group_send)` per group",
        "raw redis-py `PUBLISH` (floor)",
        "A real export job",
    ],
    "## 4. Launch endpoint": ["**POST /exports/**", "no-op view (same middleware)"],
    "## 5. Socket capacity": ["**project consumer**", "no-op consumer (accept only)", "at once (fresh daphne)"],
    "## Targets": [
        "1. SQLite export",
        "2. live p50",
        "2. live p99",
        "3. ≤ 0.5 ms per update",
        "3. one Redis connection for the life of a job",
        "4. SQLite launch p99",
        "5. < 60 KiB per idle socket",
    ],
}


def test_smoke_mode_runs_every_benchmark_and_prints_figures_beside_baselines():
    out_dir = Path(os.environ.get("TEST_OUTPUT_DIR", ROOT / "test-output")) / "benchmarks-smoke"
    # The benchmarks choose their own settings, databases and Redis database (12).
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["BENCH_OUTPUT_DIR"] = str(out_dir)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-6000:]

    printed = proc.stdout
    for heading, labels in EXPECTED.items():
        assert heading in printed, heading
        section = printed.split(heading, 1)[1].split("\n## ", 1)[0]
        for label in labels:
            assert label in section, f"{label!r} missing under {heading!r}:\n{section}"
        # Every section carries figures: a table with at least one data row of numbers.
        assert any(row.startswith("| ") and any(ch.isdigit() for ch in row) for row in section.splitlines())
    report = out_dir / "BENCHMARKS-smoke.md"
    assert "## Targets" in report.read_text()

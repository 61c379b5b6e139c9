"""Run every benchmark and write the report: `python -m benchmarks [--smoke] [--only N,...]`.

Full mode writes BENCHMARKS.md at the repository root; smoke mode (tiny sizes, well under a
minute) writes benchmarks-output/BENCHMARKS-smoke.md. Each benchmark runs as its own driver
process (benchmarks/*_bench.py, publish_cost.py) on the benchmarks' own databases and Redis
database 12, and prints its table as soon as it is done. A missed target is reported, never an
error: the exit status is non-zero only if a benchmark could not run at all.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path

from benchmarks import report
from benchmarks.common import (
    BENCH_REDIS_URL,
    PG_ADMIN_URL,
    ROOT,
    bench_env,
    flush_bench_redis,
    output_dir,
    prepare_database,
    redis_bench,
    run_driver,
)

FULL = {
    "export_sizes": [10_000, 100_000, 1_000_000],
    "export_reference": 1_000,
    "live_sockets": [100, 1000],
    "live_seconds": 15,
    "publish_updates": 5000,
    "publish_naive_updates": 300,
    "launch_requests": 300,
    "launch_concurrent_requests": 1000,
    "launch_concurrency": 20,
    "socket_stages": [1000, 5000],
    "socket_settle": 2.0,
}
SMOKE = {
    "export_sizes": [200],
    "export_reference": 200,
    "live_sockets": [10],
    "live_seconds": 1,
    "publish_updates": 100,
    "publish_naive_updates": 10,
    "launch_requests": 20,
    "launch_concurrent_requests": 20,
    "launch_concurrency": 5,
    "socket_stages": [10, 20],
    "socket_settle": 0.2,
}


def postgres_reachable() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://"), connect_timeout=3):
            return True
    except Exception:
        return False


def machine_info(pg_ok: bool) -> dict:
    import django
    import psutil

    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    client = redis_bench()
    redis_version = client.info("server")["redis_version"]
    client.close()
    pg_version = None
    if pg_ok:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://")) as conn:
            pg_version = conn.execute("SHOW server_version").fetchone()[0]
    import sqlite3

    packages = ["channels", "channels-redis", "daphne", "django-rq", "rq", "redis", "orjson", "psycopg", "websockets"]
    return {
        "commit": git_commit(),
        "cores": os.cpu_count(),
        "memory_gib": psutil.virtual_memory().total / 1024**3,
        "cpu_model": model,
        "python": platform.python_version(),
        "django": django.get_version(),
        "redis": redis_version,
        "postgresql": pg_version,
        "sqlite": sqlite3.sqlite_version,
        "packages": {name: _version(name) for name in packages},
        "kernel": platform.release(),
    }


def git_commit() -> str:
    """The product's commit, and whether product files differed from it when the run started."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    product = ["accounts", "exports", "notifications", "posts", "project", "templates", "requirements.txt", "Procfile"]
    changed = git("status", "--porcelain", "--untracked-files=no", "--", *product)
    return commit + (" with uncommitted changes" if changed else "")


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_busy_seconds() -> float:
    """Busy CPU time of the whole machine so far (/proc/stat), in seconds."""
    with open("/proc/stat") as fh:
        fields = [int(v) for v in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def command_line() -> str:
    command = shlex.join([os.path.relpath(sys.executable, ROOT), "-m", "benchmarks", *sys.argv[1:]])
    if os.environ.get("MAKELEVEL"):
        return f"make bench (which runs: {command})"
    return command


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that every benchmark runs")
    parser.add_argument("--only", help="comma-separated benchmark numbers to run (1-5); default: all")
    parser.add_argument("--output", help="report path (default: BENCHMARKS.md, or the smoke report in --smoke)")
    parser.add_argument("--render", help="only rewrite the report from a saved results.json")
    options = parser.parse_args()

    if options.render:
        saved = json.loads(Path(options.render).read_text())
        output = options.output or ROOT / "BENCHMARKS.md"
        Path(output).write_text(report.document(saved["info"], saved["command"], saved["results"], saved["run"]))
        print(f"Report rewritten to {output} from {options.render}.")
        return 0

    if options.smoke:
        os.environ["BENCH_SMOKE"] = "1"
    config = SMOKE if options.smoke else FULL
    selected = {int(n) for n in options.only.split(",")} if options.only else {1, 2, 3, 4, 5}
    output = options.output or (output_dir() / "BENCHMARKS-smoke.md" if options.smoke else ROOT / "BENCHMARKS.md")
    # One channel-layer prefix for every process of this run (pub/sub channels are server-wide).
    os.environ.setdefault("CHANNEL_LAYER_PREFIX", f"bench-{os.getpid()}")

    started = time.monotonic()
    started_at = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()
    busy_before, own_before = cpu_busy_seconds(), own_cpu_seconds()
    pg_ok = postgres_reachable()
    databases = ["sqlite", "postgres"] if pg_ok else ["sqlite"]
    web_db = "postgres" if pg_ok else "sqlite"
    info = machine_info(pg_ok)
    print(report.machine_section(info, command_line(), started_at=started_at), flush=True)
    if not pg_ok:
        print(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: its benchmarks are skipped.\n", flush=True)

    for db in databases:
        prepare_database(db)
    flush_bench_redis()

    results: dict = {"config": config, "web_db": web_db, "databases": databases, "smoke": options.smoke}
    failures = []
    steps = [
        (1, "export", lambda: {db: run_driver("benchmarks.export_bench", bench_env(db), _export_args(config), 1200)
                               for db in databases}),
        (2, "live", lambda: run_driver("benchmarks.live_bench", bench_env(web_db), [
            "--sockets", ",".join(map(str, config["live_sockets"])), "--seconds", str(config["live_seconds"])])),
        (3, "publish", lambda: run_driver("benchmarks.publish_cost", bench_env("sqlite"), [
            "--updates", str(config["publish_updates"]),
            "--naive-updates", str(config["publish_naive_updates"]),
            "--job-user", f"bench-export-{config['export_sizes'][-1]}"])),
        (4, "launch", lambda: {db: run_driver("benchmarks.launch_bench", bench_env(db), [
            "--requests", str(config["launch_requests"]),
            "--concurrent-requests", str(config["launch_concurrent_requests"]),
            "--concurrency", str(config["launch_concurrency"])]) for db in databases}),
        (5, "sockets", lambda: run_driver("benchmarks.socket_bench", bench_env(web_db), [
            "--stages", ",".join(map(str, config["socket_stages"])), "--settle", str(config["socket_settle"])])),
    ]  # fmt: skip
    timings = {}
    for number, key, run in steps:
        if number not in selected:
            continue
        step_started = time.monotonic()
        try:
            results[key] = run()
        except Exception:
            failures.append(number)
            print(f"Benchmark {number} ({key}) could not run:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
            continue
        finally:
            timings[key] = time.monotonic() - step_started
        print(report.section(number, results), flush=True)
    flush_bench_redis()

    elapsed = time.monotonic() - started
    busy = cpu_busy_seconds() - busy_before
    own = own_cpu_seconds() - own_before
    run_info = {
        "started_at": started_at.isoformat(),
        "elapsed": elapsed,
        "timings": timings,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "other_cpu_seconds": max(0.0, busy - own),
        "own_cpu_seconds": own,
        "cores": info["cores"],
        "redis_url": BENCH_REDIS_URL,
    }
    summary = report.summary(results)
    print(summary, flush=True)
    command = command_line()
    # Beside the report: BENCHMARKS.md -> results.json, anything else -> results-<its name>.json.
    stem = "smoke" if options.smoke and not options.output else Path(output).stem
    saved = output_dir() / ("results.json" if Path(output) == ROOT / "BENCHMARKS.md" else f"results-{stem}.json")
    saved.write_text(json.dumps({"info": info, "command": command, "results": results, "run": run_info}))
    with open(output, "w") as fh:
        fh.write(report.document(info, command, results, run_info))
    print(f"Report written to {os.path.relpath(output, ROOT)} in {elapsed:.0f} s.", flush=True)
    if failures:
        print(f"Benchmarks that could not run: {failures}", file=sys.stderr)
        return 1
    return 0


def _export_args(config: dict) -> list[str]:
    return ["--sizes", ",".join(map(str, config["export_sizes"])), "--reference", str(config["export_reference"])]


if __name__ == "__main__":
    sys.exit(main())

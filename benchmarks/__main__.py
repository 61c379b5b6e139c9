"""`python -m benchmarks [--smoke] [NAME ...]`: run the benchmarks, each in its own process, then
write BENCHMARKS.md from their JSON (with --smoke: tiny sizes, into benchmarks-output/)."""

from __future__ import annotations

import argparse
import subprocess
import sys

from benchmarks.common import ROOT, postgres_reachable

# (benchmark, database): the web-facing ones on PostgreSQL, as deployed; export and launch on both.
RUNS = [
    ("export", "sqlite"),
    ("export", "postgres"),
    ("imports", "sqlite"),
    ("imports", "postgres"),
    ("live", "postgres"),
    ("publish", "sqlite"),  # its job exports the SQLite export benchmark's author
    ("launch", "sqlite"),
    ("launch", "postgres"),
    ("sockets", "postgres"),
    ("burst", "postgres"),
    ("sharded", "postgres"),
    ("overhead", "sqlite"),
    ("export_email", "sqlite"),
    ("longposts", "sqlite"),
    ("storage", "sqlite"),  # starts its own S3 server (SeaweedFS)
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that every benchmark runs")
    parser.add_argument("names", nargs="*", help="only these benchmarks (default: all)")
    options = parser.parse_args()
    smoke = ["--smoke"] if options.smoke else []
    runs = [run for run in RUNS if not options.names or run[0] in options.names]
    if not postgres_reachable():  # a machine without PostgreSQL still runs every benchmark once
        print("PostgreSQL does not answer: every benchmark runs on SQLite.", flush=True)
        runs = list(dict.fromkeys((name, "sqlite") for name, _ in runs))
    failed = []
    for name, database in runs:
        print(f"\n## {name} on {database}", flush=True)
        command = [sys.executable, "-m", f"benchmarks.{name}", "--database", database, *smoke]
        if subprocess.run(command, cwd=ROOT).returncode:
            failed.append(f"{name} on {database}")
    subprocess.run([sys.executable, "-m", "benchmarks.write", *smoke], cwd=ROOT, check=True)
    if failed:
        print(f"Could not run: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

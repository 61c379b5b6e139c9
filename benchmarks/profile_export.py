"""Where the export's time goes beyond the floor's: the floor, the writer alone and the real job, alternately.

Not a benchmark of record (it writes no results/ JSON): the comparison that docs/performance.md
quotes for the export on SQLite. Each run is a fresh process, as in benchmarks/export.py (whose
author, floor and project it uses): the floor (`values_list().iterator()` and orjson); the
writer alone (`exports.writer.write_posts_json` into a file, no task, no progress); the real job
(`export_start()`, then a burst worker: finished_at − started_at). `--cprofile DIR` also writes a
cProfile of the writer's and the floor's processes (pstats format).

    python -m benchmarks.profile_export --database sqlite [--posts 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("writer", "floor"):
        return child(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cprofile", default="")
    parser.add_argument("--no-project", action="store_true", help="the floor and the writer only")
    options = parser.parse_args()
    sys.argv = [sys.argv[0], "--database", options.database]
    from benchmarks.common import start
    from benchmarks.export import author, project

    start(__doc__, database=options.database)
    author(options.posts)  # seeded once, then reused
    times: dict[str, list[float]] = {"floor": [], "writer": [], "project": []}
    for _ in range(options.repeat):
        for mode in ("floor", "writer"):
            command = [sys.executable, "-m", "benchmarks.profile_export", mode, str(options.posts), options.cprofile]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            times[mode].append(float(out.split()[-1]))
        if not options.no_project:
            times["project"].append(project(options.posts)[0])
        print({mode: [round(t, 3) for t in values] for mode, values in times.items()}, flush=True)
    floor = statistics.median(times["floor"])
    for mode, values in times.items():
        if values:
            print(f"{mode}: median {statistics.median(values):.3f} s, ÷ floor {statistics.median(values) / floor:.3f}")


def child(mode: str, posts: int, cprofile_dir: str) -> None:
    import cProfile

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from benchmarks.common import OUT
    from benchmarks.export import floor
    from exports.writer import write_posts_json

    user = get_user_model().objects.get(username=f"bench-export-{posts}")  # connects, untimed
    profiler = cProfile.Profile() if cprofile_dir else None
    with open(OUT / f"profile-export-{mode}.json", "wb") as out:
        began = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        if mode == "floor":
            floor(user, out)
        else:
            write_posts_json(author=user, out=out, chunk_size=settings.EXPORT_CHUNK_SIZE, on_progress=lambda *_: None)
        if profiler is not None:
            profiler.disable()
        seconds = time.perf_counter() - began
    (OUT / f"profile-export-{mode}.json").unlink()
    if profiler is not None:
        profiler.dump_stats(f"{cprofile_dir}/export-{mode}.prof")
    print(seconds)


if __name__ == "__main__":
    main()

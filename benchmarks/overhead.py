"""Per-job overhead.

A series of 1-post exports, one at a time, each launched as the site does (`export_start`) on
an idle `rqworker default` (emails to an SMTP server on loopback): launch → running (the task's
started_at) and started_at → finished_at, and where a job's time goes, measured inside the worker
and its work horse by a benchmark-only subclass of the project's worker class that times each
phase (queue pickup, the fork, RQ's bookkeeping, the database connection, state transitions and
their pushes, writing, storing, emailing). Floor: the same export's code run in-process on a warm
process (`task_run_job`, no queue, no fork).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict

from benchmarks.common import save, start, target

JOBS, SMOKE_JOBS = 60, 5


def floor(jobs: int) -> None:
    """In a fresh, warmed-up process: the same job's code (`task_run_job`) without queue or fork."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from live_tasks.jobs import task_run_job
    from live_tasks.models import Task
    from live_tasks.worker import warm_up

    warm_up()
    user = get_user_model().objects.get(username=sys.argv[3])
    times = []
    for _ in range(jobs + 1):  # the first one warms the connections up, uncounted
        task = Task.objects.create(user=user, kind="export_posts")
        began = time.perf_counter()
        assert task_run_job(str(task.id)) == "succeeded"
        times.append(1000 * (time.perf_counter() - began))
    print(statistics.median(times[1:]))


def main() -> None:
    args = start(__doc__, database="sqlite")
    from django.contrib.auth import get_user_model

    from benchmarks.timed_worker import TIMINGS
    from exports.services import export_start
    from live_tasks.models import Task
    from posts.models import Post
    from tests.processes import CapturedSMTP, running

    jobs = SMOKE_JOBS if args.smoke else JOBS
    user = get_user_model().objects.create(username=f"bench-overhead-{os.getpid()}", email="o@example.com")
    Post.objects.create(author=user, body="the one post")
    TIMINGS.unlink(missing_ok=True)
    launches, tasks = {}, []
    with CapturedSMTP() as smtp:
        os.environ["EMAIL_URL"] = smtp.url
        command = [
            sys.executable,
            "manage.py",
            "rqworker",
            "default",
            "--worker-class",
            "benchmarks.timed_worker.TimedWorker",
        ]
        with running(command, dict(os.environ), "overhead-worker"):
            time.sleep(3)  # an idle worker, waiting on the queue
            for _ in range(jobs):
                began = time.time()
                task = export_start(user=user)  # autocommit: enqueued on return
                launches[str(task.id)] = (began, time.time())
                while not (task := Task.objects.get(pk=task.pk)).is_finished:
                    time.sleep(0.02)  # the figures come from the row and the worker, not this loop
                assert task.status == "succeeded", task.error
                tasks.append(task)
                time.sleep(0.05)  # idle again before the next
        lines = subprocess.run(
            [sys.executable, "-m", "benchmarks.overhead", "floor", str(jobs), user.username],
            capture_output=True,
            text=True,
            check=True,
            env=dict(os.environ),
        ).stdout.splitlines()
    events: dict[str, dict] = defaultdict(dict)
    for line in TIMINGS.read_text().splitlines():
        item = json.loads(line)
        events[item["job"]][item["event"]] = item
    ms: dict[str, list[float]] = defaultdict(list)
    for task in tasks:
        e, (launched, enqueued) = events[str(task.id)], launches[str(task.id)]
        assert task.started_at and task.finished_at
        ms["launch → running (the task's started_at)"].append(1000 * (task.started_at.timestamp() - launched))
        ms["started_at → finished_at"].append(1000 * (task.finished_at - task.started_at).total_seconds())
        ms["queue pickup (enqueued → fork)"].append(1000 * (e["fork"]["t"] - enqueued))
        ms["the fork (→ the work horse runs)"].append(1000 * (e["horse"]["t"] - e["fork"]["t"]))
        ms["RQ's bookkeeping before the job"].append(1000 * (e["horse done"]["began"] - e["horse"]["t"]))
        for phase, seconds in e["horse done"]["phases"].items():
            ms[f"in the job: {phase}"].append(1000 * seconds)
        ms["RQ's bookkeeping after, the horse's exit"].append(1000 * (e["reaped"]["t"] - e["horse done"]["t"]))
    rows = [{"phase": k, "p50 ms": statistics.median(v), "p90 ms": sorted(v)[int(len(v) * 0.9)]} for k, v in ms.items()]
    rows.append(
        {"phase": "floor: the same job's code in a warm process (no queue, no fork)", "p50 ms": float(lines[-1])}
    )
    p50 = {k: statistics.median(v) for k, v in ms.items()}
    targets = [
        target("1-post export, started_at → finished_at, p50 ms", p50["started_at → finished_at"], "≤", 25),
        target("launch → running on an idle worker, p50 ms", p50["launch → running (the task's started_at)"], "≤", 50),
    ]
    save(args, "overhead", __doc__, {"": rows}, targets)


if __name__ == "__main__" and sys.argv[1:2] == ["floor"]:
    floor(int(sys.argv[2]))
elif __name__ == "__main__":
    main()

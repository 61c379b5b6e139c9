"""Per-job overhead.

A series of 1-post exports, one at a time, each launched as the site does (`export_start`), one on
RQ then one on Celery in turn: on an idle `rqworker default`, and on an idle Celery worker with one
prefork pool child (`QUEUE_BACKEND` "celery", RabbitMQ, the queue `live-tasks-bench`); emails to an
SMTP server on loopback. Launch → running (the task's started_at) and started_at → finished_at,
and where a job's time goes, measured inside the workers: on RQ by a benchmark-only subclass of
the project's worker class (queue pickup, the fork, RQ's bookkeeping), on Celery by signal
handlers in the worker and its pool child (queue pickup, the hand-off to the child), on both the
job's own phases (the database connection, the Celery job record and heartbeat thread, state
transitions and their pushes, writing, storing, emailing); and each worker's CPU per job and the
memory of the process that runs the jobs; then on each, what a job's memory leaves behind in the
process that ran it (a 50,000-post export), and a job process killed in the middle of a job: when
its task fails, when the next job runs. Floor: the same export's code run in-process on a warm
process (`task_run_job`, no queue, no fork), one floor for both.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict

from benchmarks.common import CELERY_QUEUE, MIB, celery_env, celery_queue, celery_worker, save, start, target

JOBS, SMOKE_JOBS = 60, 5
BIG_POSTS, SMOKE_BIG_POSTS = 50_000, 20_000  # an export long enough to be killed in its middle
KILLS, SMOKE_KILLS = 5, 1
PHASES = [  # the job's phases, in the order a job runs them
    "database connection",
    "the job record and its heartbeat thread",
    "transitions: UPDATE",
    "transitions: read and push",
    "writing",
    "storing",
    "emailing",
]


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


BACKENDS = {"rq": "RQ", "celery": "Celery"}


def use_backend(name: str) -> None:
    """Launches from this process go to RQ's `default` or to the benchmarks' Celery queue."""
    from django.conf import settings

    if name == "celery":
        from benchmarks import celery_app  # noqa: F401  # the site's app, loaded as settings load it there

        settings.LIVE_TASKS.update(QUEUE_BACKEND="celery", QUEUE=CELERY_QUEUE)
    else:
        settings.LIVE_TASKS.update(QUEUE_BACKEND="rq", QUEUE="default")


def tree(pid: int) -> dict:
    """A worker's CPU seconds (its live and reaped children's too), and the RSS of each process."""
    import psutil

    process = psutil.Process(pid)
    times = [process.cpu_times()] + [child.cpu_times() for child in process.children(recursive=True)]
    cpu = sum(t.user + t.system for t in times) + times[0].children_user + times[0].children_system
    children = {child.pid: child.memory_info().rss / MIB for child in process.children(recursive=True)}
    return {"cpu": cpu, "rss": process.memory_info().rss / MIB, "children": children}


def wait_finished(task_id: str):
    from live_tasks.models import Task

    while not (task := Task.objects.get(pk=task_id)).is_finished:
        time.sleep(0.01)
    return task


def big_export_and_kill(backend: str, worker_pid: int, big_user, user, kills: int) -> dict:
    """On an idle worker: a big export to its end (the job process's memory before and after),
    then `kills` times another killed in its middle (SIGKILL to the process running it) and a
    1-post export launched right after the kill."""
    import psutil

    from exports.services import export_start
    from live_tasks.models import Task

    use_backend(backend)
    worker = psutil.Process(worker_pid)
    job_rss = lambda: sum(p.memory_info().rss for p in worker.children()) / MIB  # noqa: E731
    rss_before = job_rss() if backend == "celery" else worker.memory_info().rss / MIB
    done = wait_finished(str(export_start(user=big_user).id))
    assert done.status == "succeeded", done.error
    time.sleep(0.5)  # the horse is reaped; the pool child idle
    rss_after = job_rss() if backend == "celery" else worker.memory_info().rss / MIB
    failed_ms: list[float] = []
    next_ms: list[float] = []
    for _ in range(3 * kills):
        if len(failed_ms) == kills:
            break
        task = export_start(user=big_user)
        while (task := Task.objects.get(pk=task.pk)).status != "running":
            time.sleep(0.005)
        (child,) = worker.children()  # the work horse, or the one pool child
        child.kill()
        killed = time.time()
        after = export_start(user=user)  # the next job, at once: when does the worker run it?
        task, after = wait_finished(str(task.id)), wait_finished(str(after.id))
        assert after.status == "succeeded" and after.started_at, after.error
        time.sleep(0.5)  # idle again
        if task.status == "succeeded":  # it ended before the kill (a busy machine): not a sample
            continue
        assert task.status == "failed" and task.finished_at and "worker lost" in task.error, task.error
        failed_ms.append(1000 * (task.finished_at.timestamp() - killed))
        next_ms.append(1000 * (after.started_at.timestamp() - killed))
    assert failed_ms, "every big export ended before its kill"
    return {
        "queue": BACKENDS[backend],
        "job process RSS before a big export MiB (RQ: the worker)": rss_before,
        "after it MiB": rss_after,
        "kills mid-job": len(failed_ms),
        "killed mid-job → its task failed (worker lost) p50 ms": statistics.median(failed_ms),
        "… max ms": max(failed_ms),
        "killed → the next job (launched at once) running p50 ms": statistics.median(next_ms),
        "… max ms ": max(next_ms),
    }


def main() -> None:
    args = start(__doc__, database="sqlite")
    from django.contrib.auth import get_user_model

    from benchmarks.timed_worker import TIMINGS
    from exports.services import export_start
    from live_tasks.models import Task
    from posts.models import Post
    from posts.services import posts_seed
    from tests.processes import CapturedSMTP, running

    jobs = SMOKE_JOBS if args.smoke else JOBS
    user = get_user_model().objects.create(username=f"bench-overhead-{os.getpid()}", email="o@example.com")
    Post.objects.create(author=user, body="the one post")
    big_posts = SMOKE_BIG_POSTS if args.smoke else BIG_POSTS
    big_user = get_user_model().objects.create(username=f"bench-overhead-big-{os.getpid()}", email="b@example.com")
    posts_seed(author=big_user, count=big_posts)
    TIMINGS.unlink(missing_ok=True)
    launches: dict[str, tuple[float, float]] = {}
    tasks: dict[str, list] = {name: [] for name in BACKENDS}
    use_backend("celery")
    celery_queue(purge=True)  # what an interrupted run left
    with CapturedSMTP() as smtp:
        os.environ["EMAIL_URL"] = smtp.url
        rq_worker = [sys.executable, "manage.py", "rqworker", "default"]
        rq_worker += ["--worker-class", "benchmarks.timed_worker.TimedWorker"]
        celery_env_ = celery_env(dict(os.environ, BENCH_CELERY_TIMINGS="1"))
        with (
            running(rq_worker, dict(os.environ), "overhead-worker") as rq_proc,
            running(celery_worker(1, "overhead"), celery_env_, "overhead-celery-worker") as celery_proc,
        ):
            assert celery_queue(), "the Celery worker did not start"
            time.sleep(3)  # idle workers, waiting on their queues
            pids = {"rq": rq_proc.pid, "celery": celery_proc.pid}
            before = {name: tree(pid) for name, pid in pids.items()}
            for _ in range(jobs):
                for name in BACKENDS:  # one job on each in turn: the machine's drift falls on both alike
                    use_backend(name)
                    began = time.time()
                    task = export_start(user=user)  # autocommit: enqueued on return
                    launches[str(task.id)] = (began, time.time())
                    while not (task := Task.objects.get(pk=task.pk)).is_finished:
                        time.sleep(0.02)  # the figures come from the row and the worker, not this loop
                    assert task.status == "succeeded", task.error
                    tasks[name].append(task)
                    time.sleep(0.05)  # idle again before the next
            time.sleep(0.5)  # the last horse is reaped, the last message acknowledged
            after = {name: tree(pid) for name, pid in pids.items()}
            kills = SMOKE_KILLS if args.smoke else KILLS
            killed = [big_export_and_kill(name, pid, big_user, user, kills) for name, pid in pids.items()]
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
    ms: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in BACKENDS}
    for name, series in tasks.items():
        for task in series:
            e, (launched, enqueued), m = events[str(task.id)], launches[str(task.id)], ms[name]
            assert task.started_at and task.finished_at
            m["launch → running (the task's started_at)"].append(1000 * (task.started_at.timestamp() - launched))
            m["export_start returns (its row inserted, its job enqueued)"].append(1000 * (enqueued - launched))
            m["started_at → finished_at"].append(1000 * (task.finished_at - task.started_at).total_seconds())
            if name == "rq":
                m["queue pickup (enqueued → fork)"].append(1000 * (e["fork"]["t"] - enqueued))
                m["the fork (→ the work horse runs)"].append(1000 * (e["horse"]["t"] - e["fork"]["t"]))
                m["RQ's bookkeeping before the job"].append(1000 * (e["horse done"]["began"] - e["horse"]["t"]))
                done, after_job = e["horse done"], "RQ's bookkeeping after, the horse's exit"
            else:
                m["Celery: queue pickup (enqueued → the worker's main process has it)"].append(
                    1000 * (e["received"]["t"] - enqueued)
                )
                m["Celery: to the pool child (no fork; → the task starts there)"].append(
                    1000 * (e["prerun"]["t"] - e["received"]["t"])
                )
                done, after_job = e["postrun"], ""
            for phase, seconds in done["phases"].items():
                m[f"in the job: {phase}"].append(1000 * seconds)
            if after_job:
                m[after_job].append(1000 * (e["reaped"]["t"] - done["t"]))

    def order(phase: str) -> tuple[int, int]:  # the queue's work before the job, the job's phases, RQ's after
        if phase.startswith("in the job: "):
            return 1, PHASES.index(phase.removeprefix("in the job: "))
        return (2 if phase.endswith("the horse's exit") else 0), 0

    phases = sorted(dict.fromkeys([*ms["rq"], *ms["celery"]]), key=order)  # stable: launch and run first
    rows = []
    for phase in phases:
        row: dict = {"phase": phase}
        for name, label in BACKENDS.items():
            values = ms[name].get(phase)
            row[f"{label} p50 ms"] = statistics.median(values) if values else None
            row[f"{label} p90 ms"] = sorted(values)[int(len(values) * 0.9)] if values else None
        rows.append(row)
    floor_ms = float(lines[-1])
    rows.append(
        {
            "phase": "floor: the same job's code in a warm process (no queue, no fork; one floor for both)",
            "RQ p50 ms": floor_ms,
            "Celery p50 ms": floor_ms,
        }
    )
    forked = {
        "rq": sum("fork" in events[str(task.id)] for task in tasks["rq"]),
        "celery": len(set(after["celery"]["children"]) - set(before["celery"]["children"])),
    }
    job_rss = {  # the process a job runs in: a fresh horse of the RQ worker; the same pool child throughout
        "rq": (before["rq"]["rss"], after["rq"]["rss"]),
        "celery": (sum(before["celery"]["children"].values()), sum(after["celery"]["children"].values())),
    }
    process_rows = []
    for name, label in BACKENDS.items():
        process_rows.append(
            {
                "queue": label,
                "worker CPU ms per job (all its processes)": 1000 * (after[name]["cpu"] - before[name]["cpu"]) / jobs,
                "job processes forked": forked[name],
                "RSS before MiB (RQ: the worker; Celery: its pool child)": job_rss[name][0],
                "RSS after MiB": job_rss[name][1],
                f"RSS growth over {jobs} jobs MiB": job_rss[name][1] - job_rss[name][0],
                "worker's main process RSS after MiB": after[name]["rss"],
            }
        )
    p50 = {name: {k: statistics.median(v) for k, v in ms[name].items()} for name in BACKENDS}
    targets = []
    for name in BACKENDS:
        suffix = "" if name == "rq" else " (Celery)"
        started = p50[name]["started_at → finished_at"]
        running_ms = p50[name]["launch → running (the task's started_at)"]
        targets += [
            target(f"1-post export, started_at → finished_at, p50 ms{suffix}", started, "≤", 25),
            target(f"launch → running on an idle worker, p50 ms{suffix}", running_ms, "≤", 50),
        ]
    caption = "The worker processes over the series (RQ: the horses' times are in the worker's):"
    kill_caption = (
        f"Then, on each idle worker: an export of {big_posts:,} posts to its end; {kills} times, another one whose"
        " job process is killed (SIGKILL) once it runs, and a 1-post export launched right after:"
    )
    tables = {"": rows, caption: process_rows, kill_caption: killed}
    save(args, "overhead", __doc__, tables, targets)


if __name__ == "__main__" and sys.argv[1:2] == ["floor"]:
    floor(int(sys.argv[2]))
elif __name__ == "__main__":
    main()

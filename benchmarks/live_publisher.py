"""The worker side of the live progress benchmark: one process publishing for many running tasks.

Each task gets one progress update per second through the project's publish path
(notifications.publish.publish_task_update, as ProgressReporter calls it), the tasks' updates
spread evenly over each second. Each message carries `bench_t`, the monotonic clock right before
the publish call, from which the load generator computes latency. Then every task is finished
through the project's real transition (exports.task_state.task_mark_succeeded: the row update,
then a final publish that waits for Redis), which a page that missed it recovers from its snapshot.

Usage: python -m benchmarks.live_publisher CLIENTS_JSON SECONDS
"""

from __future__ import annotations

import json
import sys
import time

from benchmarks.common import emit_result, setup_django


def main() -> None:
    clients_file, seconds = sys.argv[1], int(sys.argv[2])
    setup_django()
    from exports.models import Task
    from exports.selectors import task_to_dict
    from exports.task_state import task_mark_succeeded

    from notifications.publish import publish_task_update

    with open(clients_file) as fh:
        entries = [(user_id, task_id) for user_id, _, task_id in json.load(fh)]
    tasks = {str(t.id): t for t in Task.objects.filter(pk__in=[task_id for _, task_id in entries])}
    base = [(user_id, task_to_dict(tasks[task_id])) for user_id, task_id in entries]
    count = len(base)

    published = 0
    lag_max = 0.0
    started = time.monotonic() + 0.2
    cpu_started = time.process_time()
    for tick in range(seconds):
        for index, (user_id, task) in enumerate(base):
            due = started + tick + index / count
            ahead = due - time.monotonic()
            if ahead > 0.001:
                time.sleep(ahead)
            else:
                lag_max = max(lag_max, -ahead)
            seq = task["seq"] + 1 + tick
            message = dict(task, seq=seq, progress=min(99, tick + 1), detail=f"{tick + 1} of {seconds} steps")
            message["bench_t"] = time.monotonic()
            publish_task_update(user_id=user_id, task=message, wait=False)
            published += 1
    progress_seconds = time.monotonic() - started
    progress_cpu = time.process_time() - cpu_started  # both threads: the caller and the publisher's loop

    finals_started = time.monotonic()
    finals = sum(task_mark_succeeded(task_id, detail="Benchmark task finished") is not None for _, task_id in entries)
    emit_result(
        {
            "tasks": count,
            "published": published,
            "per_task": seconds,
            "progress_seconds": progress_seconds,
            "progress_cpu_seconds": progress_cpu,
            "schedule_lag_max": lag_max,
            "finals": finals,
            "finals_seconds": time.monotonic() - finals_started,
        }
    )


if __name__ == "__main__":
    main()

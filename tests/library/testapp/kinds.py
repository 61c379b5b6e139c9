"""`test_steps`: sleeps through `steps` steps, reporting each; may fail, may produce a file.

Parameters (Task.params): steps (default 3), step_seconds (0.05), fail_at (a step number, or
none), with_file (false), store_retried (false; true: the file is stored through `with_retries`,
as an export stores its own), file_bytes (the file's size: 0 for one line naming the task; more:
that many bytes of a repeating pattern, written 64 KiB at a time), echo_input (false; true: the
file is the task's input, read as a stream), transient_failures (0; N: storing the file with
store_retried fails N times with a network fault before it succeeds), ignore_time_limit (false;
true: a step interrupted by the job's time limit carries on, as work that swallows it would),
count_runs_in (a file path: each run of the work appends a line to it). Its cleanup leaves a marker
file, so a test can see that it ran.

`test_short_limit` runs the same steps with a job time limit of SHORT_LIMIT_SECONDS.
"""

from __future__ import annotations

import os
import time

from live_tasks.errors import TaskStepFailed, is_job_timeout
from live_tasks.files import input_open, result_writer, work_dir
from live_tasks.kinds import TaskKind, TaskResult, register
from live_tasks.models import Task
from live_tasks.reporter import ProgressReporter
from live_tasks.retries import with_retries

TEST_STEPS = "test_steps"
STORING_FAILED = "The result could not be stored."


def cleanup_marker(task_id: object):
    return work_dir() / f"cleaned-{task_id}"


def run_steps(task: Task, progress: ProgressReporter) -> TaskResult:
    steps = int(task.params.get("steps", 3))
    fail_at = task.params.get("fail_at")
    if count_runs_in := task.params.get("count_runs_in"):
        with open(count_runs_in, "a") as runs:
            runs.write(f"{task.id} {os.getpid()}\n")
    for step in range(1, steps + 1):
        try:
            time.sleep(float(task.params.get("step_seconds", 0.05)))
        except Exception as exc:
            if not (task.params.get("ignore_time_limit") and is_job_timeout(exc)):
                raise
        if step == fail_at:
            raise TaskStepFailed(f"Step {step} failed on purpose.")
        progress(step, steps, detail=f"Step {step} of {steps}")
    stored = ""
    if task.params.get("with_file"):
        failures = [OSError("a transient network fault, on purpose")] * int(task.params.get("transient_failures", 0))

        def store() -> str:
            if failures:
                raise failures.pop()
            return write_file(task)

        # store_retried: as an export stores its file, retried on transient faults, failing with STORING_FAILED.
        stored = (
            with_retries(progress, "storing the file", STORING_FAILED, store)
            if task.params.get("store_retried")
            else store()
        )
    # The worker process that forked this work horse: tests of several workers look at it.
    return TaskResult(detail=f"{steps} steps done by worker {os.getppid()}", file=stored)


WRITE_BYTES = 64 * 1024


def file_pattern(size: int) -> bytes:
    """What a task with file_bytes=size writes."""
    block = bytes(range(256)) * (WRITE_BYTES // 256)
    return (block * (size // WRITE_BYTES + 1))[:size]


def write_file(task: Task) -> str:
    with result_writer(task.id, name="result.txt") as out:
        if task.params.get("echo_input"):
            upload, _ = input_open(task.id)
            with upload:
                while chunk := upload.read(WRITE_BYTES):
                    out.write(chunk)
        elif size := int(task.params.get("file_bytes", 0)):
            block = file_pattern(WRITE_BYTES)
            for start in range(0, size, WRITE_BYTES):
                out.write(block[: min(WRITE_BYTES, size - start)])
        else:
            out.write(f"the result of {task.id}".encode())
    return out.stored_name


def mark_cleaned(task: Task) -> None:
    cleanup_marker(task.id).write_text("cleaned")


test_steps = register(
    TaskKind(
        name=TEST_STEPS,
        label="Test steps",
        run=run_steps,
        timeout=60,
        cleanup=mark_cleaned,
        download_name=lambda task: f"steps-{task.id}.txt",
    )
)


# A second kind, for what must tell kinds apart (a receiver connected for one kind only).
other_steps = register(TaskKind(name="test_other_steps", label="Other test steps", run=run_steps, timeout=60))


SHORT_LIMIT_SECONDS = 2
# The same steps with a short job time limit, for what a timeout does.
short_limit_steps = register(
    TaskKind(
        name="test_short_limit",
        label="Short limit steps",
        run=run_steps,
        timeout=SHORT_LIMIT_SECONDS,
        cleanup=mark_cleaned,
    )
)

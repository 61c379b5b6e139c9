"""The RQ backend (LIVE_TASKS["QUEUE_BACKEND"] = "rq", the default): the queue, enqueueing a task's
job, stopping it, reading its state. The worker side is live_tasks/worker.py (TaskWorker).

django_rq.get_queue() opens a new Redis connection pool on every call, owned by a client that closes
it when collected; so the queue is built once per process, under a lock, on the process's one
client (redisclients says why; redis-py's pool is fork-safe). Jobs are named by dotted path, so
this module imports no job code.
"""

from __future__ import annotations

import logging
from typing import Any

import django_rq
from redis.exceptions import RedisError
from rq import Callback, Queue
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus

from .. import redisclients
from ..conf import live_settings
from ..kinds import TaskKind
from . import JobState

logger = logging.getLogger(__name__)

# Every kind's job is this one function: it looks the kind up by the task's `kind`.
TASK_JOB = "live_tasks.jobs.task_run_job"
TASK_JOB_STOPPED = "live_tasks.jobs.task_job_stopped"


@redisclients.once_per_process
def default_queue() -> Queue:
    # commit_mode="auto", whatever the site's RQ["COMMIT_MODE"]: the core already enqueues in its own
    # transaction.on_commit, after the commit. django-rq's other modes would defer the enqueue again
    # and return None: "on_db_commit" (its default) inside any atomic block, such as ATOMIC_REQUESTS or
    # a test's captured on-commit callbacks, "request_finished" always; and the deferred call would
    # write the job into task_job_enqueue's pipeline after it was executed, so the job is lost.
    # The queue is LIVE_TASKS["QUEUE"] ("default"): in RQ_QUEUES (checked: live_tasks.E002), worked by
    # `rqworker <that name>`.
    return django_rq.get_queue(live_settings.QUEUE, connection=redisclients.rq_connection(), commit_mode="auto")


def task_job_enqueue(task_id: str, *, kind: TaskKind, language: str = "") -> Job:
    """Enqueue the job of a task; the task id is the job id. Raises RedisError.

    `language` (the task's) is what the job writes its detail and error in: passed with the job,
    so the work horse need not read the row for it before it starts.
    """
    queue = default_queue()
    # One pipeline, so saving the job and queueing it cost one round trip to Redis, not two.
    with queue.connection.pipeline() as pipe:
        job = queue.enqueue_call(
            TASK_JOB,
            args=(task_id,),
            kwargs={"language": language} if language else None,
            job_id=task_id,
            timeout=kind.job_timeout(),
            # RQ keeps a failed job's record a year by default; a week is enough for operators.
            failure_ttl=live_settings.FAILED_JOB_TTL_SECONDS,
            # Runs in the worker after RQ's stop-job command killed the work horse (a cancel).
            on_stopped=Callback(TASK_JOB_STOPPED),
            pipeline=pipe,
        )
        pipe.execute()
    return job


def task_job_fetch(task_id: str) -> Job | None:
    try:
        return Job.fetch(task_id, connection=default_queue().connection)
    except NoSuchJobError:
        return None


def task_job_stop(task_id: str) -> bool:
    """live_tasks.queue.task_job_stop on RQ: a queued job is deleted, a running one's horse is killed
    by RQ's stop-job command (then TASK_JOB_STOPPED runs in the worker)."""
    try:
        job = task_job_fetch(task_id)
        if job is None:
            return False
        status = job.get_status()
        if status == JobStatus.STARTED:
            send_stop_job_command(default_queue().connection, task_id)
            return True
        if status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
            job.delete()  # off the queue, and no record left behind in a registry
        return False
    except (RedisError, InvalidJobOperation) as exc:
        logger.warning("Could not stop job %s: %r", task_id, exc)
        return True


def task_jobs_delete(task_ids: list[str]) -> None:
    """Delete the RQ records (job hash, results, registry entries) of ended tasks. Raises RedisError."""
    connection = default_queue().connection
    for job in Job.fetch_many(task_ids, connection=connection):
        if job is not None and job.get_status() != JobStatus.STARTED:
            job.delete()


# RQ's job statuses, by what they mean for the safety net.
JOB_PHASES = {
    JobStatus.CREATED: "waiting",
    JobStatus.QUEUED: "waiting",
    JobStatus.DEFERRED: "waiting",
    JobStatus.SCHEDULED: "waiting",
    JobStatus.READY_TO_ENQUEUE: "waiting",
    JobStatus.RATE_LIMITED: "waiting",
    JobStatus.STARTED: "started",
    JobStatus.FINISHED: "finished",
    JobStatus.FAILED: "failed",
    JobStatus.STOPPED: "stopped",
    JobStatus.CANCELED: "stopped",
}


def task_job_state(task_id: str) -> JobState:
    job = task_job_fetch(task_id)
    if job is None:
        return JobState("missing")
    # The status as read with the rest of the job (one HGETALL), not read again: a job that a worker
    # starts in between would look started with no heartbeat yet, silent, and be failed as lost.
    phase = JOB_PHASES.get(job.get_status(refresh=False), "waiting")
    if phase == "failed":
        result = job.latest_result()
        lost = "terminated unexpectedly" in ((result.exc_string if result else None) or "")
        return JobState("failed", worker_lost=lost)
    return JobState(phase, heartbeat=job.last_heartbeat or job.started_at)  # type: ignore[arg-type]


def queue_health() -> dict[str, Any]:
    # The same connection settings as the queue itself (URL, TLS or Sentinel). Workers are counted
    # per queue: an email worker is no worker for the tasks.
    from django.conf import settings
    from rq import Worker

    queue = default_queue()
    result: dict[str, Any] = {"ok": True, "queued_jobs": queue.count, "workers": Worker.count(queue=queue)}
    # The site's other queues (its emails, say) are on the same Redis: two more small reads each.
    for name in getattr(settings, "RQ_QUEUES", {}):
        if name != queue.name:
            other = Queue(name, connection=queue.connection)
            result[name] = {"queued_jobs": other.count, "workers": Worker.count(queue=other)}
    return result


class RQBackend:
    """live_tasks.queue.QueueBackend on django-rq."""

    name = "rq"

    def enqueue(self, task_id: str, *, kind: TaskKind, language: str) -> None:
        task_job_enqueue(task_id, kind=kind, language=language)

    def stop(self, task_id: str) -> bool:
        return task_job_stop(task_id)

    def state(self, task_id: str) -> JobState:
        return task_job_state(task_id)

    def delete_records(self, task_ids: list[str]) -> None:
        task_jobs_delete(task_ids)

    def health(self) -> dict[str, Any]:
        return queue_health()

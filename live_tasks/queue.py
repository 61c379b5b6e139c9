"""The RQ side of a task: the queue, enqueueing a task's job, stopping it, reading its state.

django_rq.get_queue() opens a new Redis connection pool on every call, owned by a client that closes
it when collected; so the queue is built once per process, under a lock, on the process's one
client (redisclients says why; redis-py's pool is fork-safe). Jobs are named by dotted path, so
this module imports no job code.
"""

from __future__ import annotations

import logging

import django_rq
from redis.exceptions import RedisError
from rq import Callback, Queue
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus

from . import redisclients
from .conf import live_settings
from .kinds import TaskKind

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
    """Best effort: take a queued job off the queue, or tell its worker to kill a running one.

    Returns whether a work horse may still be running the task (its job started, or Redis could
    not say): then only the worker, once the horse is gone, or the safety net cleans up after it.
    The task row is already final when this runs, so a job that slips through finds its task no
    longer queued or running and does nothing (live_tasks/state.py).
    """
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

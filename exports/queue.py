"""The RQ side of an export: the queue, enqueueing a task's job, stopping it, reading its state.

django_rq.get_queue() opens a new Redis connection pool on every call; a launch endpoint that
called it per request would reconnect every time, so the queue is built once per process
(redis-py's pool is fork-safe). Jobs are named by dotted path, so this module imports no job code.
"""

from __future__ import annotations

import functools
import logging

import django_rq
from django.conf import settings
from redis.exceptions import RedisError
from rq import Callback, Queue
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus

logger = logging.getLogger(__name__)

EXPORT_JOB = "exports.jobs.export_posts_job"


@functools.cache
def default_queue() -> Queue:
    return django_rq.get_queue("default")


def export_job_enqueue(task_id: str) -> Job:
    """Enqueue the export job of a task; the task id is the job id. Raises RedisError."""
    queue = default_queue()
    # One pipeline, so saving the job and queueing it cost one round trip to Redis, not two.
    with queue.connection.pipeline() as pipe:
        job = queue.enqueue_call(
            EXPORT_JOB,
            args=(task_id,),
            job_id=task_id,
            timeout=settings.EXPORT_JOB_TIMEOUT,
            # Runs in the worker after RQ's stop-job command killed the work horse (a cancel).
            on_stopped=Callback("exports.jobs.export_job_stopped"),
            pipeline=pipe,
        )
        pipe.execute()
    return job


def export_job_fetch(task_id: str) -> Job | None:
    try:
        return Job.fetch(task_id, connection=default_queue().connection)
    except NoSuchJobError:
        return None


def export_job_stop(task_id: str) -> None:
    """Best effort: take a queued job off the queue, or tell its worker to kill a running one.

    The task row is already final when this runs, so a job that slips through finds its task
    no longer queued or running and does nothing (exports/task_state.py).
    """
    try:
        job = export_job_fetch(task_id)
        if job is None:
            return
        status = job.get_status()
        if status == JobStatus.STARTED:
            send_stop_job_command(default_queue().connection, task_id)
        elif status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
            job.cancel()
    except (RedisError, InvalidJobOperation) as exc:
        logger.warning("Could not stop job %s: %r", task_id, exc)

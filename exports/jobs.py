"""Job paths of earlier releases, kept so that jobs already queued in Redis still run.

Jobs are stored in Redis by dotted path. Before the generic core, an export was queued as
`exports.jobs.export_posts_job`, and the scheduler queued the two periodic jobs below; each now
hands over to the core. New jobs never use these names.
"""

from __future__ import annotations

from typing import Any

from tasks.jobs import task_job_stopped, task_run_job
from tasks.reconcile import tasks_reconcile
from tasks.services import tasks_expire


def export_posts_job(task_id: str) -> str:
    return task_run_job(task_id)


def export_job_stopped(job: Any, connection: Any) -> None:
    task_job_stopped(job, connection)


def tasks_reconcile_job() -> dict[str, int]:
    return tasks_reconcile()


def exports_expire_job() -> int:
    return tasks_expire()

"""RQ entry points for exports: take ids, load rows, call services, own the failure handling."""

from __future__ import annotations

import logging
import smtplib

from rq.timeouts import JobTimeoutException

from .services import export_produce
from .task_state import task_mark_failed, task_mark_running

logger = logging.getLogger(__name__)

UNEXPECTED_ERROR = "The export failed unexpectedly. Please try again; the team has the details."


def user_error_for(exc: BaseException) -> str:
    """A short message a user can act on; the traceback goes to the log, not to them."""
    if isinstance(exc, JobTimeoutException):
        return "The export timed out."
    if isinstance(exc, (smtplib.SMTPException, ConnectionError)):
        return "The export was written but the email could not be sent."
    if isinstance(exc, OSError):
        return "The export file could not be stored."
    return UNEXPECTED_ERROR


def export_posts_job(task_id: str) -> str:
    task = task_mark_running(task_id)
    if task is None:
        logger.info("Export %s is no longer queued (cancelled or gone); skipping", task_id)
        return "skipped"
    try:
        export_produce(task=task)
    except BaseException as exc:
        logger.exception("Export %s failed", task_id)
        task_mark_failed(task_id, error=user_error_for(exc))
        raise  # RQ records the job in its failed registry for operators
    return "succeeded"

"""The account emails on Celery (QUEUE_BACKEND=celery): one Celery task that runs a job function of
accounts/jobs.py, the very functions that RQ's email worker runs. Only the enqueue differs by
backend (accounts/services.py, email_enqueue); the emails themselves are made in one place.

Sent to the "email" queue, which the site's one `celery -A project worker -Q default,email` serves
beside the tasks' (Procfile.celery). Imported by AccountsConfig.ready on Celery only, so that the
worker knows the task and an RQ site never imports Celery's task machinery for it.
"""

from __future__ import annotations

import logging

from celery import shared_task

from . import jobs

logger = logging.getLogger(__name__)

TASK_NAME = "accounts.send_email"
# The job functions a message may name: a message on the broker never chooses any other code.
EMAIL_JOBS = {job.__name__: job for job in (jobs.send_welcome_email_job, jobs.send_password_reset_email_job)}
# As the RQ queue's DEFAULT_TIMEOUT for emails (project/settings.py): past it, the mail server hangs.
EMAIL_TIME_LIMIT_SECONDS = 5 * 60


@shared_task(
    name=TASK_NAME,
    # Acknowledged as it starts, like an RQ job taken off its queue: an email whose worker died is
    # not sent twice (it may have been sent already); the account change stands either way.
    acks_late=False,
    ignore_result=True,
    time_limit=EMAIL_TIME_LIMIT_SECONDS,
)
def send_email(job: str, user_id: int) -> str:
    """Run the account email job named `job` (a function of accounts/jobs.py) for `user_id`."""
    function = EMAIL_JOBS.get(job)
    if function is None:
        logger.error("Refused an email message for an unknown job %r", job)
        return "refused"
    return function(user_id)

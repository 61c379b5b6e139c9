"""Account use cases: sign-up, password reset, email change, deletion. Emails go through a queue of
their own ("email") after the commit, and what an anonymous client can make the site email is
limited (accounts/limits.py); a task's unfinished work is cancelled through the task core."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import django_rq
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from redis.exceptions import RedisError
from rq import Queue

from live_tasks import tasks_delete_for_user
from live_tasks.conf import live_settings
from live_tasks.redisclients import rq_connection

from .limits import password_reset_count, signup_count

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from .forms import SignupForm  # the forms call these services, never the other way round

logger = logging.getLogger(__name__)


EMAIL_QUEUE = "email"


def user_signup(*, form: SignupForm, client: str) -> User:
    """Create the account from a valid form and queue its welcome email.

    Raises SignupLimited past SIGNUP_CLIENT_LIMIT sign-ups from `client` (accounts.limits.client_address).
    """
    signup_count(client=client)
    with transaction.atomic():
        user = form.save()
    transaction.on_commit(lambda: email_enqueue(_welcome_job(), user.pk))
    return user


def password_reset_request(*, email: str, client: str) -> int:
    """Queue a reset email for each active account with this address that can log in with a
    password. Says nothing about whether any exists (the page is the same either way).

    Raises PasswordResetLimited, before looking the address up and with nothing queued, past
    PASSWORD_RESET_EMAIL_LIMIT requests for `email` or PASSWORD_RESET_CLIENT_LIMIT from `client`.
    """
    password_reset_count(email=email, client=client)
    users = [
        user
        for user in get_user_model()._default_manager.filter(email__iexact=email, is_active=True)
        if user.has_usable_password()
    ]
    from .jobs import send_password_reset_email_job

    for user in users:
        transaction.on_commit(partial(email_enqueue, send_password_reset_email_job, user.pk))
    return len(users)


def user_change_email(*, user: User, email: str) -> None:
    user.email = email
    user.save(update_fields=["email"])


def account_delete(*, user: User) -> None:
    """Delete the account and everything of it: its unfinished tasks are cancelled first (their
    jobs stopped), then the user row and with it (cascade) its posts and tasks; the result files
    are deleted and open pages told once that has committed."""
    with transaction.atomic():
        tasks_delete_for_user(user=user)
        user.delete()


def _welcome_job() -> Callable[[int], str]:
    from .jobs import send_welcome_email_job

    return send_welcome_email_job


def email_queue() -> Queue:
    # On the tasks' queue's Redis client (the library's, one per process), so emails open no
    # connection pool of their own; the queue object itself costs nothing to make.
    return django_rq.get_queue(EMAIL_QUEUE, connection=rq_connection())


def email_enqueue(job: Callable[[int], str], user_id: int) -> None:
    """Queue an account email job on the email queue: on RQ a flood of them never delays a task,
    whose jobs are on the default queue with workers of their own.

    On RQ (the default) the job function itself is the RQ job; on Celery (QUEUE_BACKEND=celery) a
    message of the Celery task accounts.send_email names it, on the broker's "email" queue
    (accounts/celery_tasks.py). The same function sends the email either way. (This site's one
    Celery worker serves both queues, taking from each in turn: a flood of emails then slows the
    start of a task by the few seconds the emails ahead of it take, and never blocks it; a second
    worker with `-Q email` would keep them apart entirely.)
    """
    errors = _queue_errors()
    try:
        if live_settings.QUEUE_BACKEND == "celery":
            _celery_email_enqueue(job, user_id)
        else:
            email_queue().enqueue(job, user_id, failure_ttl=settings.EMAIL_FAILED_JOB_TTL_SECONDS)
    except errors:
        # The account change stands either way; a missing email must not fail it.
        logger.exception("Could not enqueue %s for user %s", job.__name__, user_id)


def _celery_email_enqueue(job: Callable[[int], str], user_id: int) -> None:
    from .celery_tasks import EMAIL_JOBS, send_email

    assert EMAIL_JOBS.get(job.__name__) is job, f"{job.__name__} is not an account email job"
    send_email.apply_async(
        args=(job.__name__, user_id),
        queue=EMAIL_QUEUE,
        # One reconnect covers a pooled connection that a broker restart broke (as the tasks' enqueue).
        retry=True,
        retry_policy={"max_retries": 1, "interval_start": 0.1, "interval_step": 0.2, "interval_max": 0.2},
    )


def _queue_errors() -> tuple[type[Exception], ...]:
    """What enqueueing an email raises when its queue cannot be reached: Redis's errors, and on
    Celery the broker's too (kombu's, and the socket's; kombu is imported on Celery only)."""
    if live_settings.QUEUE_BACKEND != "celery":
        return (RedisError,)
    from kombu.exceptions import OperationalError

    return (RedisError, OperationalError, OSError)

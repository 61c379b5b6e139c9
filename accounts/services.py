"""Account use cases: sign-up, whose welcome email goes through the queue after the commit."""

from __future__ import annotations

import logging

from django.db import transaction
from redis.exceptions import RedisError

from tasks.queue import default_queue

from .forms import SignupForm

logger = logging.getLogger(__name__)


def user_signup(*, form: SignupForm):
    with transaction.atomic():
        user = form.save()
    transaction.on_commit(lambda: _enqueue_welcome_email(user.pk))
    return user


def _enqueue_welcome_email(user_id: int) -> None:
    from .jobs import send_welcome_email_job

    try:
        default_queue().enqueue(send_welcome_email_job, user_id)
    except RedisError:
        # The account exists either way; a missing welcome email must not fail sign-up.
        logger.exception("Could not enqueue the welcome email for user %s", user_id)

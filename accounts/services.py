"""Account use cases: sign-up, password reset, email change, deletion. Emails go through the queue
after the commit; a task's unfinished work is cancelled through the task core."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.db import transaction
from redis.exceptions import RedisError

from tasks.queue import default_queue
from tasks.services import tasks_forget_user

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from .forms import SignupForm  # the forms call these services, never the other way round

logger = logging.getLogger(__name__)


def user_signup(*, form: SignupForm) -> User:
    with transaction.atomic():
        user = form.save()
    transaction.on_commit(lambda: _enqueue_email(_welcome_job(), user.pk))
    return user


def password_reset_request(*, email: str) -> int:
    """Queue a reset email for each active account with this address that can log in with a
    password. Says nothing about whether any exists (the page is the same either way)."""
    users = [
        user
        for user in get_user_model()._default_manager.filter(email__iexact=email, is_active=True)
        if user.has_usable_password()
    ]
    from .jobs import send_password_reset_email_job

    for user in users:
        transaction.on_commit(partial(_enqueue_email, send_password_reset_email_job, user.pk))
    return len(users)


def user_change_email(*, user: User, email: str) -> None:
    user.email = email
    user.save(update_fields=["email"])


def account_delete(*, user: User) -> None:
    """Delete the account and everything of it: its unfinished tasks are cancelled first (their
    jobs stopped), then the user row and with it (cascade) its posts and tasks; the result files
    are deleted and open pages told once that has committed."""
    with transaction.atomic():
        tasks_forget_user(user=user)
        user.delete()


def _welcome_job() -> Callable[[int], str]:
    from .jobs import send_welcome_email_job

    return send_welcome_email_job


def _enqueue_email(job: Callable[[int], str], user_id: int) -> None:
    try:
        default_queue().enqueue(job, user_id)
    except RedisError:
        # The account change stands either way; a missing email must not fail it.
        logger.exception("Could not enqueue %s for user %s", job.__name__, user_id)

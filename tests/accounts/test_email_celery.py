"""The account emails on Celery (QUEUE_BACKEND=celery): the same job functions, sent as the Celery
task accounts.send_email on the broker's "email" queue instead of RQ's, and nothing in Redis's RQ
queues. (The round trip through a real worker: tests/test_make_run.py, the Celery `make run`.)"""

from __future__ import annotations

import logging

import pytest
from django.core import mail
from kombu.exceptions import OperationalError

from accounts import celery_tasks
from accounts.jobs import send_password_reset_email_job, send_welcome_email_job
from accounts.services import email_enqueue


@pytest.fixture
def on_celery(settings):
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "QUEUE_BACKEND": "celery"}


@pytest.fixture
def sent(monkeypatch):
    """The messages email_enqueue hands to Celery (args and options of apply_async), not sent."""
    calls: list[tuple[tuple, dict]] = []
    monkeypatch.setattr(celery_tasks.send_email, "apply_async", lambda args, **options: calls.append((args, options)))
    return calls


@pytest.mark.django_db
def test_on_celery_an_account_email_is_a_message_on_the_email_queue_naming_its_job(
    on_celery, sent, user, email_queue, queue
):
    email_enqueue(send_welcome_email_job, user.pk)
    email_enqueue(send_password_reset_email_job, user.pk)
    assert [(args, options["queue"]) for args, options in sent] == [
        (("send_welcome_email_job", user.pk), "email"),
        (("send_password_reset_email_job", user.pk), "email"),
    ]
    assert email_queue.count == 0 and queue.count == 0, "nothing on RQ's queues"

    # The worker's side: the same job function sends the same email.
    assert [celery_tasks.send_email.run(*args) for args, _ in sent] == ["sent", "sent"]
    assert [message.subject for message in mail.outbox] == ["Welcome to Exports", "Reset your Exports password"]


@pytest.mark.django_db
def test_on_rq_the_email_is_still_an_rq_job(sent, user, email_queue):
    email_enqueue(send_welcome_email_job, user.pk)
    (job,) = email_queue.jobs
    assert job.func is send_welcome_email_job and sent == []


@pytest.mark.django_db
def test_a_broker_that_cannot_be_reached_loses_the_email_not_the_account_change(on_celery, monkeypatch, user, caplog):
    def unreachable(*args, **options):
        raise OperationalError("[Errno 111] Connection refused")

    monkeypatch.setattr(celery_tasks.send_email, "apply_async", unreachable)
    with caplog.at_level(logging.ERROR, logger="accounts.services"):
        email_enqueue(send_welcome_email_job, user.pk)  # does not raise
    assert f"Could not enqueue send_welcome_email_job for user {user.pk}" in caplog.text


def test_a_message_naming_any_other_function_runs_nothing(caplog):
    with caplog.at_level(logging.ERROR, logger="accounts.celery_tasks"):
        assert celery_tasks.send_email.run("os.system", 1) == "refused"
    assert "unknown job 'os.system'" in caplog.text
    assert set(celery_tasks.EMAIL_JOBS) == {"send_welcome_email_job", "send_password_reset_email_job"}

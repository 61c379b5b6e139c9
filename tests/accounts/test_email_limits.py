"""What an anonymous client can make the site email: password resets per address and per client
address, sign-ups per client address (429 with Retry-After, the form with a message), and the
account emails on a queue of their own, so that a flood of them never delays a user's export."""

from __future__ import annotations

import re

import pytest
from axes.helpers import get_client_ip_address
from django.contrib.auth import get_user_model
from django.test import Client
from rq.registry import FinishedJobRegistry

from accounts.jobs import send_welcome_email_job
from accounts.limits import client_address, email_key
from accounts.services import email_enqueue
from exports.services import export_start
from live_tasks.models import Task
from tests.factories import UserFactory
from tests.processes import (
    CapturedSMTP,
    HttpSession,
    child_env,
    daphne,
    email_worker,
    wait_for_task,
    wait_until,
    worker,
)

RESET = "/accounts/password/reset/"
SIGNUP = "/accounts/signup/"
STRONG = "plum-violin-harbour-42"


def as_compared(page: bytes) -> str:
    """A page without what differs between any two requests: the CSRF token, the address as typed
    (both in a value="..."), and the seconds left in the window."""
    return re.sub(r"Please wait \d+", "Please wait N", re.sub(r'value="[^"]*"', "", page.decode()))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_flood_of_resets_for_one_address_emails_the_victim_at_most_the_limit(email_queue):
    victim = UserFactory(email="victim@example.com")
    with CapturedSMTP() as smtp:
        env = child_env(
            PASSWORD_RESET_EMAIL_LIMIT="3",
            PASSWORD_RESET_CLIENT_LIMIT="1000",  # only the per-address limit is tried here
            EMAIL_URL=smtp.url,
        )
        with daphne(env) as (port, _), email_worker(env):
            attacker = HttpSession(port, source_address="127.0.0.2")
            # The address as typed varies (case, spaces): it is one address, counted once.
            typed = ["victim@example.com", "Victim@Example.COM", " VICTIM@example.com "] * 14
            answers = [attacker.request("POST", RESET, form={"email": email}) for email in typed]
            statuses = [status for status, _ in answers]
            assert statuses == [302] * 3 + [429] * (len(typed) - 3)
            assert 1 <= int(attacker.last_headers["Retry-After"]) <= 3600
            refused = answers[-1][1]
            assert b"Too many password reset requests. Please wait" in refused
            assert b'name="email"' in refused, "the form again, with the message on it"

            # The same flood for an address no account has gets exactly the same answers.
            other = HttpSession(port, source_address="127.0.0.3")
            unknown = [other.request("POST", RESET, form={"email": "nobody@example.com"}) for _ in typed]
            assert [status for status, _ in unknown] == statuses
            assert as_compared(unknown[-1][1]) == as_compared(refused)

            finished = FinishedJobRegistry(queue=email_queue)
            wait_until(lambda: finished.count == 3)  # the email worker sent what was queued
            assert email_queue.count == 0, "no refused request queued anything"
            assert len(smtp.messages) == 3
            assert {message["To"] for message in smtp.messages} == {victim.email}
    # The address is in no Redis key, only its keyed hash.
    keys = [key.decode() for key in email_queue.connection.scan_iter("ratelimit:*")]
    assert not [key for key in keys if "victim" in key.lower() or "nobody" in key]
    assert any(email_key(" Victim@Example.COM ") in key for key in keys)


@pytest.mark.django_db(transaction=True)
def test_one_client_is_limited_over_every_address_it_asks_for(settings, email_queue):
    settings.PASSWORD_RESET_CLIENT_LIMIT = 3
    for number in range(5):
        UserFactory(email=f"user{number}@example.com")
    one_client = Client(REMOTE_ADDR="203.0.113.7")

    answers = [one_client.post(RESET, {"email": f"user{number}@example.com"}) for number in range(5)]

    assert [answer.status_code for answer in answers] == [302, 302, 302, 429, 429]
    assert 1 <= int(answers[3]["Retry-After"]) <= 3600
    assert "Too many password reset requests" in answers[3].content.decode()
    assert email_queue.count == 3, "a refused request queues nothing"
    elsewhere = Client(REMOTE_ADDR="198.51.100.9").post(RESET, {"email": "user4@example.com"})
    assert elsewhere.status_code == 302, "the limit is per client address"
    assert email_queue.count == 4


def test_the_client_address_is_the_one_axes_locks_logins_out_by(rf):
    request = rf.post(RESET, REMOTE_ADDR="203.0.113.7")
    assert client_address(request) == get_client_ip_address(request) == "203.0.113.7"
    # One IPv6 subscriber holds a /64: its addresses are one client.
    first = client_address(rf.post(RESET, REMOTE_ADDR="2001:db8:1:2::1"))
    assert first == client_address(rf.post(RESET, REMOTE_ADDR="2001:db8:1:2:ffff::9")) == "2001:db8:1:2::/64"
    assert client_address(rf.post(RESET, REMOTE_ADDR="2001:db8:1:3::1")) != first


@pytest.mark.django_db(transaction=True)
def test_signups_from_one_client_address_are_limited(settings, email_queue):
    settings.SIGNUP_CLIENT_LIMIT = 2

    def sign_up(name: str, address: str = "203.0.113.7"):
        form = {"username": name, "email": f"{name}@example.com", "password1": STRONG, "password2": STRONG}
        return Client(REMOTE_ADDR=address).post(SIGNUP, form)

    assert [sign_up(name).status_code for name in ("ann", "ben")] == [302, 302]
    refused = sign_up("cat")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 3600
    page = refused.content.decode()
    assert "Too many accounts were created from your network. Please wait" in page
    assert 'value="cat"' in page, "the form again, with what was typed"
    assert not get_user_model().objects.filter(username="cat").exists()
    assert email_queue.count == 2, "welcome emails for the two accounts only"
    assert sign_up("cat", address="198.51.100.9").status_code == 302, "the limit is per client address"


@pytest.mark.django_db(transaction=True)
def test_account_emails_are_queued_apart_from_the_tasks_with_a_failure_ttl(settings, user, queue, email_queue):
    email_enqueue(send_welcome_email_job, user.pk)
    (job,) = email_queue.jobs
    assert job.origin == "email" and queue.count == 0
    assert job.failure_ttl == settings.EMAIL_FAILED_JOB_TTL_SECONDS


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_export_is_not_delayed_by_a_flood_of_emails(queue, email_queue):
    """A default-queue worker runs an export enqueued after 300 emails at once: the emails wait
    for their own worker (none runs here), never in front of the export."""
    users = UserFactory.create_batch(3)
    flood = 300
    for number in range(flood):
        email_enqueue(send_welcome_email_job, users[number % 3].pk)

    with CapturedSMTP() as smtp:
        env = child_env(EMAIL_URL=smtp.url)
        owner = UserFactory()
        task = export_start(user=owner)  # enqueued after the flood
        with worker(env):
            wait_for_task(task.pk, lambda t: t.status == Task.Status.SUCCEEDED, timeout=120)
        welcomes = [message for message in smtp.messages if message["Subject"] == "Welcome to Exports"]
    assert welcomes == [], "no email was sent before the export"
    assert email_queue.count == flood, "the emails still wait for the email worker"

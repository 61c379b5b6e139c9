"""Sign-up (with a welcome email sent later by the email queue, never in the request), login and logout."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from rq import SimpleWorker

from tests.factories import PASSWORD, UserFactory

SIGNUP = "/accounts/signup/"
LOGIN = "/accounts/login/"
LOGOUT = "/accounts/logout/"
STRONG = "plum-violin-harbour-42"


def signup_data(**overrides) -> dict[str, str]:
    return {"username": "carol", "email": "carol@example.com", "password1": STRONG, "password2": STRONG} | overrides


def signed_in_username(client: Client) -> str | None:
    """Who the site thinks is signed in, as the layout shows it."""
    response = client.get("/exports/")
    if response.status_code != 200:
        return None
    marker = "Log out "
    page = response.content.decode()
    return page[page.index(marker) + len(marker) :].split("<", 1)[0].strip()


def test_signup_page_has_the_expected_fields(db):
    response = Client().get(SIGNUP)
    assert response.status_code == 200
    page = response.content.decode()
    for name in ("username", "email", "password1", "password2"):
        assert f'name="{name}"' in page
    assert 'name="csrfmiddlewaretoken"' in page


def test_signup_creates_the_user_logs_them_in_and_queues_one_welcome_email(
    db, email_queue, django_capture_on_commit_callbacks
):
    client = Client()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(SIGNUP, signup_data())
        assert email_queue.count == 0, "nothing is enqueued before the transaction commits"

    assert response.status_code == 302 and response["Location"] == "/exports/"
    user = get_user_model().objects.get(username="carol")
    assert user.email == "carol@example.com"
    assert user.check_password(STRONG) and user.is_active and not user.is_staff
    assert signed_in_username(client) == "carol"
    assert len(callbacks) == 1
    assert mail.outbox == [], "the welcome email is not sent inside the request"

    (job,) = email_queue.jobs
    assert job.func_name == "accounts.jobs.send_welcome_email_job"
    assert job.args == (user.pk,)

    SimpleWorker([email_queue], connection=email_queue.connection).work(burst=True)

    job.refresh()
    assert job.is_finished and job.return_value() == "sent"
    (message,) = mail.outbox
    assert message.to == ["carol@example.com"]
    assert message.subject == "Welcome to Exports"
    assert "Hello carol," in message.body
    assert email_queue.count == 0


def test_signup_shows_a_welcome_message_after_the_redirect(db, email_queue, django_capture_on_commit_callbacks):
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(SIGNUP, signup_data(), follow=True)
    assert response.redirect_chain == [("/exports/", 302)]
    assert "Welcome, carol! A welcome email is on its way." in response.content.decode()


@pytest.mark.parametrize("taken", ["taken@example.com", "TAKEN@Example.com"])
def test_duplicate_email_rerenders_the_form_with_an_error(db, email_queue, django_capture_on_commit_callbacks, taken):
    UserFactory(username="first", email="taken@example.com")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = Client().post(SIGNUP, signup_data(email=taken))

    assert response.status_code == 400
    assert "An account with this email already exists." in response.content.decode()
    assert 'value="carol"' in response.content.decode(), "the form keeps what was typed"
    assert not get_user_model().objects.filter(username="carol").exists()
    assert callbacks == [] and email_queue.count == 0
    assert mail.outbox == []


def test_mismatched_passwords_rerender_the_form_with_an_error(db, email_queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = Client().post(SIGNUP, signup_data(password2=STRONG + "x"))

    assert response.status_code == 400
    assert "The two password fields didn’t match." in response.content.decode()
    assert STRONG not in response.content.decode(), "passwords are never echoed back"
    assert not get_user_model().objects.filter(username="carol").exists()
    assert callbacks == [] and email_queue.count == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"username": "taken"}, "A user with that username already exists."),
        ({"email": ""}, "This field is required."),
        ({"email": "not-an-address"}, "Enter a valid email address."),
        ({"password1": "12345678", "password2": "12345678"}, "This password is too common."),
    ],
    ids=["username-taken", "no-email", "bad-email", "weak-password"],
)
def test_other_invalid_signups_are_rejected(db, email_queue, django_capture_on_commit_callbacks, overrides, message):
    UserFactory(username="taken")
    with django_capture_on_commit_callbacks(execute=True):
        response = Client().post(SIGNUP, signup_data(**overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert get_user_model().objects.count() == 1 and email_queue.count == 0


def test_an_empty_signup_submission_is_rejected_like_any_invalid_one(db, email_queue):
    # A POST without any field is still a submission: 400 and the required-field errors.
    response = Client().post(SIGNUP, {})
    assert response.status_code == 400
    assert response.content.decode().count("This field is required.") == 4
    assert get_user_model().objects.count() == 0 and email_queue.count == 0


def test_signup_requires_csrf(db, email_queue):
    response = Client(enforce_csrf_checks=True).post(SIGNUP, signup_data())
    assert response.status_code == 403
    assert not get_user_model().objects.filter(username="carol").exists()


def test_a_signed_in_user_is_sent_away_from_signup(user_client):
    response = user_client.get(SIGNUP)
    assert response.status_code == 302 and response["Location"] == "/exports/"


def test_login_with_djangos_field_names_then_logout(user):
    client = Client()
    page = client.get(LOGIN).content.decode()
    assert 'name="username"' in page and 'name="password"' in page

    response = client.post(LOGIN, {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/exports/"
    assert signed_in_username(client) == user.username

    response = client.post(LOGOUT)
    assert response.status_code == 302 and response["Location"] == LOGIN
    assert signed_in_username(client) is None
    assert client.get("/exports/")["Location"] == "/accounts/login/?next=/exports/"


def test_login_follows_next(user):
    response = Client().post(LOGIN + "?next=/posts/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/posts/"


def test_login_does_not_follow_next_off_site(user):
    response = Client().post(
        LOGIN, {"username": user.username, "password": PASSWORD, "next": "https://evil.example.com/"}
    )
    assert response.status_code == 302 and response["Location"] == "/exports/"


def test_wrong_password_is_refused(user):
    client = Client()
    response = client.post(LOGIN, {"username": user.username, "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert signed_in_username(client) is None


def test_logout_by_get_is_not_allowed(user_client, user):
    assert user_client.get(LOGOUT).status_code == 405
    assert signed_in_username(user_client) == user.username


def test_no_welcome_email_for_a_user_deleted_before_the_job_runs(db, email_queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        Client().post(SIGNUP, signup_data())
    (job,) = email_queue.jobs
    get_user_model().objects.filter(username="carol").delete()

    SimpleWorker([email_queue], connection=email_queue.connection).work(burst=True)

    job.refresh()
    assert job.is_finished and job.return_value() == "skipped"
    assert mail.outbox == []

"""What a user expects of an account: change and reset the password (the reset email through the
queue), change the email address, delete the account and everything in it."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone
from rq import SimpleWorker

from exports.services import export_start
from live_tasks.models import Task
from posts.models import Post
from tests.factories import PASSWORD, PostFactory, TaskFactory, UserFactory, login

NEW = "quince-lantern-meadow-81"


def run_jobs(queue) -> None:
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def signed_in(client: Client) -> bool:
    return client.get("/accounts/").status_code == 200


def field_errors(page: str, field: str) -> str:
    """The error list rendered right before the input `field` (Django's as_div puts it there)."""
    match = re.search(rf'<div>\s*<label for="id_{field}">.*?(?=<input)', page, re.S)
    assert match, f"no field {field}"
    return match.group(0)


def test_the_account_page_links_to_everything(user_client, user):
    page = user_client.get("/accounts/").content.decode()
    assert user.email in page
    for url in ("/accounts/email/", "/accounts/password/", "/accounts/delete/"):
        assert f'href="{url}"' in page
    assert 'href="/accounts/"' in user_client.get("/posts/").content.decode(), "in the navigation"


def test_changing_the_password_keeps_this_session_and_ends_the_others(user, client_for):
    here, elsewhere = client_for(user), client_for(user)

    response = here.post("/accounts/password/", {"old_password": PASSWORD, "new_password1": NEW, "new_password2": NEW})

    assert response.status_code == 302 and response["Location"] == "/accounts/"
    assert signed_in(here), "update_session_auth_hash: the tab that changed it stays signed in"
    assert not signed_in(elsewhere), "other sessions end (their sockets: the hardening's revocation)"
    user.refresh_from_db()
    assert user.check_password(NEW)


def test_password_errors_are_shown_under_the_password_not_its_confirmation(user_client, db):
    page = user_client.post(
        "/accounts/password/", {"old_password": PASSWORD, "new_password1": "12345678", "new_password2": "12345678"}
    ).content.decode()
    assert "This password is too common." in field_errors(page, "new_password1")
    assert "too common" not in field_errors(page, "new_password2")

    signup = (
        Client()
        .post(
            "/accounts/signup/",
            {"username": "dora", "email": "d@example.com", "password1": "12345678", "password2": "12345678"},
        )
        .content.decode()
    )
    assert "This password is too common." in field_errors(signup, "password1")
    assert "too common" not in field_errors(signup, "password2")
    mismatch = (
        Client()
        .post(
            "/accounts/signup/",
            {"username": "dora", "email": "d@example.com", "password1": NEW, "password2": NEW + "x"},
        )
        .content.decode()
    )
    assert "didn’t match" in field_errors(mismatch, "password2")


def test_a_password_reset_email_goes_through_the_queue_and_its_link_sets_a_new_password(
    user, email_queue, django_capture_on_commit_callbacks
):
    client = Client()
    assert 'href="/accounts/password/reset/"' in client.get("/accounts/login/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/accounts/password/reset/", {"email": user.email.upper()})
    assert response.status_code == 302 and response["Location"] == "/accounts/password/reset/sent/"
    assert mail.outbox == [], "not sent inside the request"
    (job,) = email_queue.jobs
    assert job.func_name == "accounts.jobs.send_password_reset_email_job" and job.args == (user.pk,)
    assert not any("token" in str(arg) for arg in job.args), "no secret waits in Redis"

    run_jobs(email_queue)

    (message,) = mail.outbox
    assert message.to == [user.email]
    match = re.search(r"http://\S+/accounts/reset/\S+/", str(message.body))
    assert match, message.body
    link = match.group(0)
    path = link.split("://", 1)[1].split("/", 1)[1]
    form_page = client.get("/" + path, follow=True)
    assert form_page.status_code == 200 and 'name="new_password1"' in form_page.content.decode()
    response = client.post(form_page.redirect_chain[-1][0], {"new_password1": NEW, "new_password2": NEW})
    assert response.status_code == 302 and response["Location"] == "/accounts/reset/done/"
    assert login(Client(), user.username, NEW)
    # The link works once.
    assert "does not work any more" in client.get("/" + path, follow=True).content.decode()


def test_a_reset_for_an_unknown_address_says_the_same_and_sends_nothing(
    db, queue, email_queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = Client().post("/accounts/password/reset/", {"email": "nobody@example.com"})
    assert response.status_code == 302 and response["Location"] == "/accounts/password/reset/sent/"
    assert queue.count == 0 and email_queue.count == 0


def test_changing_the_email_address_needs_the_password_and_a_free_address(user, user_client):
    UserFactory(email="taken@example.com")
    wrong = user_client.post("/accounts/email/", {"email": "new@example.com", "password": "nope"})
    assert wrong.status_code == 400 and "That is not your current password." in wrong.content.decode()
    taken = user_client.post("/accounts/email/", {"email": "TAKEN@example.com", "password": PASSWORD})
    assert taken.status_code == 400 and "An account with this email already exists." in taken.content.decode()
    user.refresh_from_db()
    assert user.email != "new@example.com"

    response = user_client.post("/accounts/email/", {"email": "new@example.com", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/accounts/"
    user.refresh_from_db()
    assert user.email == "new@example.com"
    assert "Your email address is now new@example.com." in user_client.get("/accounts/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_deleting_the_account_cancels_its_work_and_removes_its_posts_tasks_and_files(queue, client_for):
    user, other = UserFactory(), UserFactory()
    PostFactory.create_batch(3, author=user)
    theirs = PostFactory(author=other)
    export = export_start(user=user)
    run_jobs(queue)
    export.refresh_from_db()
    assert export.status == Task.Status.SUCCEEDED
    stored = export.file.name
    queued = export_start(user=user)  # unfinished: cancelled, its job taken off the queue
    assert queue.job_ids == [str(queued.id)]
    client = client_for(user)

    wrong = client.post("/accounts/delete/", {"password": "nope"})
    assert wrong.status_code == 400 and get_user_model().objects.filter(pk=user.pk).exists()
    response = client.post("/accounts/delete/", {"password": PASSWORD})

    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert not get_user_model().objects.filter(pk=user.pk).exists()
    assert not Post.all_objects.filter(author_id=user.pk).exists() and Post.objects.filter(pk=theirs.pk).exists()
    assert not Task.objects.filter(user_id=user.pk).exists()
    assert not default_storage.exists(stored)
    assert queue.count == 0, "the unfinished export's job was taken off the queue"
    assert not signed_in(client)
    assert "were deleted" in client.get("/accounts/login/").content.decode()


def test_the_delete_page_asks_first(user_client, user):
    TaskFactory(user=user, status=Task.Status.FAILED, finished_at=timezone.now())
    page = user_client.get("/accounts/delete/").content.decode()
    assert "cannot be undone" in page and 'name="password"' in page
    assert get_user_model().objects.filter(pk=user.pk).exists()

"""Failed logins (django-axes): a username+IP pair is locked out after LOGIN_FAILURE_LIMIT wrong
passwords in a row, with a clear page; other IPs, other usernames and successful logins go on."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import PASSWORD, UserFactory
from tests.processes import HttpSession, child_env, daphne

LOGIN = "/accounts/login/"


def attempt(client: Client, username: str, password: str, ip: str):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_wrong_passwords_lock_the_account_out_from_that_address_with_a_clear_page():
    user = UserFactory()
    with daphne(child_env()) as (port, _):
        browser = HttpSession(port)
        for _ in range(4):
            status, body = browser.request("POST", LOGIN, form={"username": user.username, "password": "wrong"})
            assert status == 200 and b"Please enter a correct username and password" in body
        # The 5th wrong password (the default LOGIN_FAILURE_LIMIT) locks the pair out...
        status, body = browser.request("POST", LOGIN, form={"username": user.username, "password": "wrong"})
        assert status == 429
        # ...and even the right password is refused now, on a page that says why and for how long.
        status, body = browser.request("POST", LOGIN, form={"username": user.username, "password": PASSWORD})
        assert status == 429
        assert b"Too many failed logins" in body and b"try again in 15 minutes" in body
        assert "sessionid" not in browser.cookies


@pytest.mark.django_db
def test_the_lockout_is_per_username_and_address_together(user):
    client = Client()
    for _ in range(4):
        assert attempt(client, user.username, "wrong", "10.0.0.1").status_code == 200
    assert attempt(client, user.username, "wrong", "10.0.0.1").status_code == 429
    assert attempt(client, user.username, PASSWORD, "10.0.0.1").status_code == 429
    # The same account from another address, and another account from the same address, still work.
    assert attempt(Client(), user.username, PASSWORD, "10.0.0.2").status_code == 302
    other = UserFactory()
    assert attempt(Client(), other.username, PASSWORD, "10.0.0.1").status_code == 302


@pytest.mark.django_db
def test_the_address_is_remote_addr_never_a_forwarding_header_the_client_sent(user):
    # Behind the proxy, daphne --proxy-headers has already put the address from nginx's
    # X-Forwarded-For in REMOTE_ADDR (tests/test_proxy_lockout.py); the headers themselves reach
    # Django too, with whatever else a client added, and axes must not read them.
    client = Client()
    for n in range(4):
        response = client.post(
            LOGIN,
            {"username": user.username, "password": "wrong"},
            REMOTE_ADDR="10.0.0.5",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}",
            HTTP_X_REAL_IP=f"203.0.113.{n}",
        )
        assert response.status_code == 200
    assert attempt(client, user.username, "wrong", "10.0.0.5").status_code == 429


@pytest.mark.django_db
def test_a_successful_login_resets_the_count(user):
    for _ in range(3):  # a person who mistypes a few times, then gets it right, every day
        for _ in range(4):
            assert attempt(Client(), user.username, "wrong", "10.0.0.3").status_code == 200
        assert attempt(Client(), user.username, PASSWORD, "10.0.0.3").status_code == 302


@pytest.mark.django_db
def test_the_admin_login_is_covered_too(user):
    client = Client()
    for _ in range(5):
        client.post("/admin/login/", {"username": user.username, "password": "wrong"}, REMOTE_ADDR="10.0.0.4")
    response = client.post("/admin/login/", {"username": user.username, "password": PASSWORD}, REMOTE_ADDR="10.0.0.4")
    assert response.status_code == 429

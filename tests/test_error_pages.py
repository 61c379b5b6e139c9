"""Error pages keep the site's navigation and say what to do next; the site has an icon."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import TaskFactory

NAV = 'class="site-header"'


def test_a_missing_page_is_the_sites_404_with_its_navigation(user_client):
    response = user_client.get("/no/such/page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert NAV in page and "Page not found" in page
    assert 'href="/exports/"' in page and "Log out" in page, "signed in, the navigation is the usual one"


def test_a_stale_form_after_signing_in_again_gets_a_page_with_a_way_back(user, client_for):
    """A tab opened before a sign-out and sign-in sends the old session's CSRF token."""
    task = TaskFactory(user=user)
    tab = client_for(user, enforce_csrf_checks=True)
    old_token = tab.get("/exports/").cookies["csrftoken"].value
    tab.logout()
    tab.force_login(user)  # signing in rotates the CSRF token
    tab.get("/exports/")

    response = tab.post(
        f"/exports/{task.id}/cancel/",
        {"csrfmiddlewaretoken": old_token},
        HTTP_REFERER=f"http://testserver/exports/{task.id}/",
    )

    assert response.status_code == 403
    page = response.content.decode()
    assert NAV in page and "Please try again" in page and "Nothing was changed." in page
    assert f'<a href="http://testserver/exports/{task.id}/" id="csrf-back">' in page
    assert "CSRF verification failed" not in page, "not Django's raw page"


def test_the_way_back_never_leads_off_the_site(user, client_for):
    response = client_for(user, enforce_csrf_checks=True).post("/posts/", {}, HTTP_REFERER="https://evil.example/")
    assert response.status_code == 403
    assert "evil.example" not in response.content.decode()
    assert 'href="/" id="csrf-back"' in response.content.decode()


@pytest.mark.urls("tests.error_urls")
def test_a_server_error_is_the_sites_500_with_its_navigation(user, client_for):
    client = client_for(user)
    client.raise_request_exception = False
    response = client.get("/boom/")
    assert response.status_code == 500
    page = response.content.decode()
    assert NAV in page and "Something went wrong on our side" in page and "Log out" in page


@pytest.mark.urls("tests.error_urls")
def test_a_forbidden_page_is_the_sites_403_with_its_navigation(user_client):
    response = user_client.get("/forbidden/")
    assert response.status_code == 403
    assert NAV in response.content.decode() and "Not allowed" in response.content.decode()


def test_every_page_links_an_icon_and_favicon_ico_is_not_a_404(user_client, db):
    for client, url in ((user_client, "/posts/"), (Client(), "/accounts/login/")):
        assert 'rel="icon" href="/static/favicon.svg"' in client.get(url).content.decode()
    response = Client().get("/favicon.ico")
    assert response.status_code == 302 and response["Location"] == "/static/favicon.svg"

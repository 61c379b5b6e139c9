"""The posts page: write a post, see only your own, stored exactly as written."""

from __future__ import annotations

import pytest
from django.test import Client

from posts.forms import POST_BODY_MAX_LENGTH
from posts.models import Post
from tests.factories import PostFactory

URL = "/posts/"


def test_lists_only_my_posts_newest_first(user_client, user, other_user):
    first = PostFactory(author=user, body="my first post")
    second = PostFactory(author=user, body="my second post")
    PostFactory(author=other_user, body="someone else's secret")

    response = user_client.get(URL)

    assert response.status_code == 200
    page = response.content.decode()
    assert "my first post" in page and "my second post" in page
    assert "someone else" not in page
    assert page.index(second.body) < page.index(first.body)
    assert "2 posts." in page


def test_a_new_user_has_no_posts(user_client, other_user):
    PostFactory(author=other_user)
    page = user_client.get(URL).content.decode()
    assert "No posts yet." in page and "0 posts." in page


def test_posting_creates_a_post_and_redirects_back(user_client, user):
    response = user_client.post(URL, {"body": "Hello, world"})

    assert response.status_code == 302 and response["Location"] == URL
    post = Post.objects.get()
    assert (post.author, post.body) == (user, "Hello, world")
    page = user_client.get(URL).content.decode()
    assert "Hello, world" in page
    assert "Post saved." in page


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "This field is required."),
        ("   ", "A post cannot be empty."),
        ("\n\t \r\n", "A post cannot be empty."),
        ("x" * (POST_BODY_MAX_LENGTH + 1), "Ensure this value has at most 20000 characters"),
    ],
    ids=["empty", "spaces", "whitespace", "too-long"],
)
def test_an_invalid_body_is_rejected_with_400_and_a_message(user_client, body, message):
    response = user_client.post(URL, {"body": body})

    assert response.status_code == 400
    assert message in response.content.decode()
    assert Post.objects.count() == 0


def test_a_post_without_the_body_field_is_rejected_too(user_client):
    # An empty POST (no fields at all) is still a submission, not a page view: 400 and a message.
    response = user_client.post(URL, {})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert Post.objects.count() == 0


def test_html_in_a_body_is_shown_escaped(user_client, user):
    user_client.post(URL, {"body": "<script>alert('x')</script> & <b>bold</b>"})

    page = user_client.get(URL).content.decode()

    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert "<script>alert" not in page and "<b>bold</b>" not in page


@pytest.mark.parametrize(
    "body",
    [
        "Hello 👋🏽 world — ünïcödé",
        "שלום עולם (RTL) مرحبا",
        "e\u0301 (decomposed) vs \u00e9 (composed)",
        "👩\u200d👩\u200d👧 family, zero-width joiners",
        "  leading and trailing spaces  ",
        "line one\r\nline two\nline three\ttab",
        "x" * POST_BODY_MAX_LENGTH,
    ],
    ids=["emoji", "rtl", "combining", "zwj", "edge-spaces", "newlines", "max-length"],
)
def test_a_body_is_stored_byte_exactly(user_client, user, body):
    response = user_client.post(URL, {"body": body})

    assert response.status_code == 302
    stored = Post.objects.get(author=user).body
    assert stored.encode("utf-8") == body.encode("utf-8")


def test_unicode_is_shown_on_the_page(user_client):
    user_client.post(URL, {"body": "Grüße 🌍 שלום"})
    assert "Grüße 🌍 שלום" in user_client.get(URL).content.decode()


def test_anonymous_is_redirected_to_login_and_cannot_post(db):
    client = Client()
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"] == f"/accounts/login/?next={URL}"

    response = client.post(URL, {"body": "sneaky"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert Post.objects.count() == 0


def test_posting_requires_a_csrf_token(user, client_for):
    client = client_for(user, enforce_csrf_checks=True)

    assert client.post(URL, {"body": "no token"}).status_code == 403
    assert Post.objects.count() == 0

    # With the token from the page's form, the same post goes through.
    client.get(URL)
    token = client.cookies["csrftoken"].value
    response = client.post(URL, {"body": "with token", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert Post.objects.get().body == "with token"


def test_pages_split_long_lists(user_client, user):
    PostFactory.create_batch(51, author=user)
    page = user_client.get(URL).content.decode()
    assert "Page 1 of 2" in page and page.count('class="card post"') == 50
    page2 = user_client.get(URL + "?page=2").content.decode()
    assert page2.count('class="card post"') == 1

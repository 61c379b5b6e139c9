"""The posts page: write a post, see only your own, stored exactly as written."""

from __future__ import annotations

import re
from datetime import UTC

import pytest
from django.test import Client

from posts.forms import POST_BODY_MAX_LENGTH
from posts.models import Post, post_fingerprint
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


# --- Counts, times, long posts, edit and delete ------------------------------------------------


def test_counts_and_times_are_written_for_people(user_client, user):
    PostFactory.create_batch(2, author=user)
    page = user_client.get(URL).content.decode()
    assert "2 posts." in page
    post = Post.objects.filter(author=user).first()
    assert post is not None
    utc = post.created_at.astimezone(UTC)
    # A <time> with the UTC instant for machines, and readable UTC text without script (live.js
    # then shows it in the reader's own zone).
    assert f'<time datetime="{utc.isoformat()}">{utc:%Y-%m-%d %H:%M:%S} UTC</time>' in page


def test_the_post_count_has_thousands_separators(user_client, user, monkeypatch):
    from django.core.paginator import Paginator

    monkeypatch.setattr(Paginator, "count", 300_000)
    assert "300,000 posts." in user_client.get(URL).content.decode()


def test_a_long_post_shows_its_beginning_and_the_rest_on_demand(user_client, user):
    long_body = "word " * 2_000
    PostFactory(author=user, body=long_body)
    PostFactory(author=user, body="short and sweet")

    page = user_client.get(URL).content.decode()

    match = re.search(r'<p class="body preview">(.*?)</p>', page, re.S)
    assert match
    preview = match.group(1)
    assert 300 < len(preview) < 700 and preview.endswith("…")
    assert "Show the whole post (10,000 characters)" in page
    match = re.search(r'<details class="more">.*?<p class="body">(.*?)</p>', page, re.S)
    assert match
    whole = match.group(1)
    assert whole == long_body, "the whole post is on the page, in a closed <details> (no script needed)"
    assert '<p class="body">short and sweet</p>' in page
    assert "<script>" not in page and " style=" not in page and "onclick" not in page


def test_a_post_can_be_edited_by_its_author(user_client, user):
    post = PostFactory(author=user, body="first draft")
    assert "first draft" in user_client.get(f"/posts/{post.id}/edit/").content.decode()
    assert user_client.post(f"/posts/{post.id}/edit/", {"body": "  "}).status_code == 400
    response = user_client.post(f"/posts/{post.id}/edit/", {"body": "second draft"})
    assert response.status_code == 302 and response["Location"] == URL
    post.refresh_from_db()
    assert post.body == "second draft"
    assert post.fingerprint == post_fingerprint("second draft", post.created_at), "imports still match it"


def test_a_post_can_be_deleted_by_its_author_after_a_confirmation(user_client, user):
    post = PostFactory(author=user, body="regrettable")
    page = user_client.get(f"/posts/{post.id}/delete/").content.decode()
    assert "regrettable" in page and "Delete the post" in page
    assert Post.objects.filter(pk=post.pk).exists(), "GET only asks"
    response = user_client.post(f"/posts/{post.id}/delete/")
    assert response.status_code == 302 and response["Location"] == URL
    assert not Post.objects.filter(pk=post.pk).exists()


def test_another_users_post_cannot_be_edited_or_deleted(user_client, other_user):
    theirs = PostFactory(author=other_user, body="not yours")
    for url in (f"/posts/{theirs.id}/edit/", f"/posts/{theirs.id}/delete/"):
        assert user_client.get(url).status_code == 404
        assert user_client.post(url, {"body": "hijacked"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.body == "not yours"


def test_edit_and_delete_need_a_csrf_token(user, client_for):
    post = PostFactory(author=user, body="kept")
    client = client_for(user, enforce_csrf_checks=True)
    assert client.post(f"/posts/{post.id}/edit/", {"body": "x"}).status_code == 403
    assert client.post(f"/posts/{post.id}/delete/").status_code == 403
    post.refresh_from_db()
    assert post.body == "kept"

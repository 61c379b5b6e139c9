"""Posts created on the posts page, per user per window: 429 with Retry-After and a message."""

from __future__ import annotations

import pytest

from posts.models import Post
from tests.factories import UserFactory, session_cookie_for
from tests.processes import HttpSession, child_env, daphne


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_posting_past_the_limit_gets_429_and_keeps_what_was_typed():
    user, other = UserFactory(), UserFactory()
    with daphne(child_env(POST_CREATE_LIMIT="3", POST_CREATE_WINDOW_SECONDS="60")) as (port, _):
        site = HttpSession(port, session_cookie_for(user))
        for i in range(3):
            status, _ = site.request("POST", "/posts/", form={"body": f"post {i}"})
            assert status == 302
        status, body = site.request("POST", "/posts/", form={"body": "one too many"})
        assert status == 429
        assert 1 <= int(site.last_headers["Retry-After"]) <= 60
        assert b"You are posting too fast" in body
        assert b"one too many" in body, "the form keeps the text"
        assert Post.objects.filter(author=user).count() == 3
        status, _ = HttpSession(port, session_cookie_for(other)).request("POST", "/posts/", form={"body": "hi"})
        assert status == 302, "the limit is per user"


@pytest.mark.django_db
def test_the_default_limit_lets_a_person_post_sixty_times_in_a_minute(user_client, user):
    for i in range(60):
        assert user_client.post("/posts/", {"body": f"post {i}"}).status_code == 302
    assert Post.objects.filter(author=user).count() == 60


@pytest.mark.django_db
def test_bulk_creation_is_not_counted(user, settings):
    from posts.services import post_create, posts_seed

    settings.POST_CREATE_LIMIT = 0
    post_create(author=user, body="imported")
    assert posts_seed(author=user, count=10) == 10


@pytest.mark.django_db
def test_posting_still_works_when_redis_is_away(user_client, user, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    from live_tasks import ratelimits

    def unreachable(self, key):
        raise RedisConnectionError("Redis is away")

    monkeypatch.setattr(ratelimits.Limit, "hit", unreachable)
    assert user_client.post("/posts/", {"body": "still here"}).status_code == 302
    assert Post.objects.filter(author=user, body="still here").exists()

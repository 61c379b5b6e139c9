"""Writing posts: one at a time from the page, or many at once for demos and benchmarks."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError

from ratelimits import Limit, RateLimited

from .models import Post

logger = logging.getLogger(__name__)

SEED_BATCH_SIZE = 5000


class PostingTooFast(RateLimited):
    """More posts from the page than POST_CREATE_LIMIT in the window."""


def post_submit(*, author: AbstractBaseUser, body: str) -> Post:
    """A post written on the posts page: counted against the author's limit first.

    Raises PostingTooFast past POST_CREATE_LIMIT posts per POST_CREATE_WINDOW_SECONDS. Bulk
    paths (imports, seeding) call post_create or posts_seed and are not counted here.
    """
    limit = Limit("post-create", settings.POST_CREATE_LIMIT, settings.POST_CREATE_WINDOW_SECONDS)
    try:
        retry_after = limit.hit(author.pk)
    except RedisError as exc:
        # Writing a post needs only the database: a Redis outage must not stop it.
        logger.warning("Post limit not checked (Redis unavailable: %r)", exc)
        retry_after = None
    if retry_after is not None:
        raise PostingTooFast(
            f"You are posting too fast. Please wait {retry_after} s before posting again.", retry_after=retry_after
        )
    return post_create(author=author, body=body)


def post_create(*, author: AbstractBaseUser, body: str) -> Post:
    return Post.objects.create(author=author, body=body)


def posts_seed(*, author: AbstractBaseUser, count: int, on_batch: Callable[[int], None] | None = None) -> int:
    """Bulk-create `count` numbered demo posts for `author`, one transaction per batch."""
    created = 0
    now = timezone.now()
    while created < count:
        batch = min(SEED_BATCH_SIZE, count - created)
        with transaction.atomic():
            Post.objects.bulk_create(
                Post(author=author, body=f"Demo post {created + i + 1} ✓", created_at=now) for i in range(batch)
            )
        created += batch
        if on_batch:
            on_batch(batch)
    return created

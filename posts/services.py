"""Writing posts: one at a time from the page, or many at once for demos and benchmarks."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from .models import Post

SEED_BATCH_SIZE = 5000


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

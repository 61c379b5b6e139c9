"""A user's posts: the content that exports write out and imports bring back.

Posts can be written invisibly, in many short transactions, and revealed all at once: each such
post carries the id of its batch, and a post whose batch has a PendingBatch row is hidden from
everything that reads posts through `Post.objects`. Deleting that one row reveals them all (one
small commit); marking the row `discarding`, then deleting the posts and then the row discards
them. An import uses this to add a million posts all or nothing without holding a write lock for
the whole import.

A post may be added to a batch only while its row exists and is not `discarding`, checked under a
lock on that row in the transaction that adds it (posts/services.py: posts_stage): a writer that
outlives its job (an orphaned work horse) can then never add a post after the discard has begun,
which the discard would miss and which would be visible once the row is gone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

if TYPE_CHECKING:
    import uuid

    from django.contrib.auth.models import User


def post_fingerprint(body: str, created_at: datetime) -> int:
    """A 64-bit digest of (body, created_at): the key an import uses to skip posts the user has.

    Equal fingerprints are only candidates: callers compare the values themselves, too.
    """
    return _digest(body, _moment(created_at))


def post_fingerprints_at(bodies: Iterable[str], created_at: datetime) -> list[int]:
    """post_fingerprint of each body at one `created_at`, which is formatted once (a third of the cost)."""
    moment = _moment(created_at)
    return [_digest(body, moment) for body in bodies]


def _moment(created_at: datetime) -> bytes:
    return b"\0" + created_at.astimezone(UTC).isoformat(timespec="microseconds").encode()


def _digest(body: str, moment: bytes) -> int:
    digest = hashlib.blake2b(body.encode("utf-8", "surrogatepass") + moment, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PendingBatch(models.Model):
    """Posts being written by a job: hidden until this row is deleted (see the module's docstring)."""

    id = models.UUIDField(primary_key=True)  # chosen by the writer (an import uses its task's id)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    # Set first by a discard, before any post is deleted: from then on nothing may be added to
    # the batch, nor may it be revealed, however late its writer is.
    discarding = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"Pending batch {self.id}"


class PostQuerySet(models.QuerySet["Post"]):
    def by_author(self, user: User) -> PostQuerySet:
        return self.filter(author=user)

    def visible(self) -> PostQuerySet:
        return self.exclude(batch_id__in=PendingBatch.objects.values("id"))

    def visible_or_in_batch(self, batch_id: uuid.UUID) -> PostQuerySet:
        return self.exclude(batch_id__in=PendingBatch.objects.exclude(pk=batch_id).values("id"))


class VisiblePostManager(models.Manager["Post"]):
    def get_queryset(self) -> PostQuerySet:
        return PostQuerySet(self.model, using=self._db).visible()

    def by_author(self, user: User) -> PostQuerySet:
        return self.get_queryset().by_author(user)


class Post(models.Model):
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="posts")
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, db_index=False)
    fingerprint = models.BigIntegerField(editable=False)
    # The batch that wrote this post (an import), if any; hidden while that batch is pending.
    batch_id = models.UUIDField(null=True, blank=True, editable=False)

    # Every read of posts goes through `objects`, which never shows a pending batch. Only the
    # writer of a batch (and cascade deletes, through Django's base manager) use `all_objects`.
    objects = VisiblePostManager()
    all_objects = PostQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        base_manager_name = "all_objects"
        indexes = [
            # Exports stream one author's posts in id order; this index serves that scan.
            models.Index(fields=["author", "id"], name="post_author_id_idx"),
            # An import looks up the posts a user already has by fingerprint, a batch at a time.
            models.Index(fields=["author", "fingerprint"], name="post_author_fingerprint_idx"),
            # Discarding a failed import finds its posts.
            models.Index(fields=["batch_id"], condition=Q(batch_id__isnull=False), name="post_batch_idx"),
        ]

    def __str__(self) -> str:
        return f"Post {self.pk} by {self.author_id}"

    def save(self, *args: object, **kwargs: object) -> None:
        self.fingerprint = post_fingerprint(self.body, self.created_at)
        super().save(*args, **kwargs)  # type: ignore[arg-type]

"""A user's posts: the content that exports write out."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class PostQuerySet(models.QuerySet):
    def by_author(self, user) -> PostQuerySet:
        return self.filter(author=user)


class Post(models.Model):
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="posts")
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, db_index=False)

    objects = PostQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        # Exports stream one author's posts in id order; this index serves that scan.
        indexes = [models.Index(fields=["author", "id"], name="post_author_id_idx")]

    def __str__(self) -> str:
        return f"Post {self.pk} by {self.author_id}"

"""Upgrading to the generic core loses nothing: task rows and files made by the exports app survive
the move of the model."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from posts.models import Post, post_fingerprint
from tasks.models import Task
from tests.factories import PASSWORD, UserFactory

BEFORE_THE_CORE = [("exports", "0002_task_expired_at"), ("posts", "0001_initial"), ("tasks", None)]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state([target for target in targets if target[1]]).apps


@pytest.mark.django_db(transaction=True)
def test_tasks_and_posts_made_before_the_core_survive_the_migration(client_for):
    old = migrate(BEFORE_THE_CORE)
    User, OldTask, OldPost = (old.get_model(name) for name in ("auth.User", "exports.Task", "posts.Post"))
    owner = User.objects.create(username="before", email="before@example.com")
    now = timezone.now()
    name = default_storage.save(f"exports/{owner.pk}/old.json", ContentFile(b'{"posts": []}'))
    succeeded = OldTask.objects.create(
        user=owner, status="succeeded", progress=100, seq=9, detail="0 posts exported", file=name, finished_at=now
    )
    queued = OldTask.objects.create(user=owner, status="queued", created_at=now)
    post = OldPost.objects.create(author=owner, body="written before ✓", created_at=now)

    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    moved = Task.objects.get(pk=succeeded.pk)
    assert (moved.kind, moved.status, moved.seq, moved.detail, moved.file.name) == (
        "export_posts",
        "succeeded",
        9,
        "0 posts exported",
        name,
    )
    assert Task.objects.get(pk=queued.pk).status == "queued"
    assert Post.objects.get(pk=post.pk).fingerprint == post_fingerprint("written before ✓", now)
    user = UserFactory._meta.model.objects.get(pk=owner.pk)
    user.set_password(PASSWORD)
    user.save()
    client = client_for(user)
    response = client.get(f"/tasks/{moved.id}/download/")
    assert response.status_code == 200 and b"".join(response.streaming_content) == b'{"posts": []}'
    assert client.get(f"/exports/{moved.id}/").status_code == 200

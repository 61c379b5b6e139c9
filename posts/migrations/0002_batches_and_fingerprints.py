"""Pending batches (posts written invisibly, then revealed at once) and each post's fingerprint.

Existing posts get their fingerprint computed here, a few thousand rows per statement.
"""

import hashlib
from datetime import UTC

import django.db.models.deletion
import django.db.models.manager
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def fingerprint(body, created_at):
    # A frozen copy of posts.models.post_fingerprint: a migration must not change with the code.
    moment = created_at.astimezone(UTC).isoformat(timespec="microseconds")
    digest = hashlib.blake2b(body.encode("utf-8", "surrogatepass") + b"\0" + moment.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def backfill_fingerprints(apps, schema_editor):
    Post = apps.get_model("posts", "Post")
    last_id = 0
    while True:
        batch = list(Post._base_manager.filter(id__gt=last_id).order_by("id").only("id", "body", "created_at")[:5000])
        if not batch:
            return
        for post in batch:
            post.fingerprint = fingerprint(post.body, post.created_at)
        Post._base_manager.bulk_update(batch, ["fingerprint"])
        last_id = batch[-1].id


class Migration(migrations.Migration):
    dependencies = [
        ("posts", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="PendingBatch",
            fields=[
                ("id", models.UUIDField(primary_key=True, serialize=False)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
        ),
        migrations.AlterModelOptions(
            name="post",
            options={"base_manager_name": "all_objects", "ordering": ["-id"]},
        ),
        migrations.AlterModelManagers(
            name="post",
            managers=[
                ("objects", django.db.models.manager.Manager()),
                ("all_objects", django.db.models.manager.Manager()),
            ],
        ),
        migrations.AddField(
            model_name="post",
            name="batch_id",
            field=models.UUIDField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="post",
            name="fingerprint",
            field=models.BigIntegerField(default=0, editable=False),
            preserve_default=False,
        ),
        migrations.RunPython(backfill_fingerprints, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="post",
            index=models.Index(fields=["author", "fingerprint"], name="post_author_fingerprint_idx"),
        ),
        migrations.AddIndex(
            model_name="post",
            index=models.Index(
                condition=models.Q(("batch_id__isnull", False)), fields=["batch_id"], name="post_batch_idx"
            ),
        ),
        migrations.AddField(
            model_name="pendingbatch",
            name="author",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to=settings.AUTH_USER_MODEL
            ),
        ),
    ]

"""Take over the Task model from the exports app, where it lived before the generic core.

The table is not touched here: on a database made before the move it already exists (as
exports_task, with its rows), and on a new database exports' own first migrations create it.
Only Django's model state moves; 0002 then renames the table and extends the model.
"""

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("exports", "0002_task_expired_at"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Task",
                    fields=[
                        ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        (
                            "kind",
                            models.CharField(
                                choices=[("export_posts", "Posts export")], default="export_posts", max_length=32
                            ),
                        ),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("queued", "Queued"),
                                    ("running", "Running"),
                                    ("succeeded", "Succeeded"),
                                    ("failed", "Failed"),
                                    ("cancelled", "Cancelled"),
                                ],
                                default="queued",
                                max_length=16,
                            ),
                        ),
                        ("progress", models.PositiveSmallIntegerField(default=0)),
                        ("seq", models.PositiveIntegerField(default=0)),
                        ("detail", models.CharField(blank=True, max_length=200)),
                        ("error", models.CharField(blank=True, max_length=500)),
                        ("file", models.FileField(blank=True, upload_to="exports/%Y/%m/")),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("started_at", models.DateTimeField(blank=True, null=True)),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        ("expired_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="tasks",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "exports_task",
                        "ordering": ["-created_at"],
                        "indexes": [models.Index(fields=["user", "-created_at"], name="task_user_created_idx")],
                        "constraints": [
                            models.UniqueConstraint(
                                condition=models.Q(("status__in", ["queued", "running"])),
                                fields=("user", "kind"),
                                name="one_unfinished_task_per_user_and_kind",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(("progress__lte", 100)), name="task_progress_at_most_100"
                            ),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]

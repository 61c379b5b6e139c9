"""The Task table under its own app's name, and what a task of any kind needs.

Renames exports_task to tasks_task (rows, constraints and indexes kept), moves the admin's
content type and permissions with it, and adds `params`, `needs_cleanup` and the safety net's
partial index. `kind` loses its choices: kinds are a registry in code (tasks/kinds.py).
"""

from django.db import migrations, models


def move_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="tasks", model="task").exists():
        ContentType.objects.filter(app_label="exports", model="task").update(app_label="tasks")


def restore_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="exports", model="task").exists():
        ContentType.objects.filter(app_label="tasks", model="task").update(app_label="exports")


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0001_initial"),
        ("exports", "0003_task_moved_to_tasks"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelTable(name="task", table=None),
        migrations.RunPython(move_content_type, restore_content_type),
        migrations.AddField(model_name="task", name="params", field=models.JSONField(blank=True, default=dict)),
        migrations.AddField(model_name="task", name="needs_cleanup", field=models.BooleanField(default=False)),
        migrations.AlterField(model_name="task", name="file", field=models.FileField(blank=True, upload_to="tasks/")),
        migrations.AlterField(model_name="task", name="kind", field=models.CharField(max_length=32)),
        migrations.AddIndex(
            model_name="task",
            index=models.Index(
                condition=models.Q(("status__in", ["queued", "running"]), ("needs_cleanup", True), _connector="OR"),
                fields=["created_at"],
                name="task_needing_attention_idx",
            ),
        ),
    ]

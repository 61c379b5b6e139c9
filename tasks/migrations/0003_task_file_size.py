"""Task.file_size: the stored result's size, recorded when the task succeeds.

Pages show it without asking the storage backend for every task listed, and the per-user quota
of stored results (tasks/limits.py) is one query. Existing results are measured once here
through the storage API; a file already gone stays unknown (null).
"""

from django.core.files.storage import default_storage
from django.db import migrations, models


def measure_stored_results(apps, schema_editor):
    Task = apps.get_model("tasks", "Task")
    stored = Task.objects.filter(status="succeeded", expired_at__isnull=True).exclude(file="")
    for task in stored.only("id", "file").iterator():
        try:
            size = default_storage.size(task.file.name)
        except OSError:
            continue
        Task.objects.filter(pk=task.pk).update(file_size=size)


class Migration(migrations.Migration):
    dependencies = [("tasks", "0002_generic_task")]

    operations = [
        migrations.AddField(
            model_name="task",
            name="file_size",
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(measure_stored_results, migrations.RunPython.noop),
    ]

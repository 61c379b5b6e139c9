"""Task.result_bytes: the size of the stored result, for the per-user storage quota.

Existing results are measured once through the storage API; a file already gone counts zero.
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
        Task.objects.filter(pk=task.pk).update(result_bytes=size)


class Migration(migrations.Migration):
    dependencies = [("tasks", "0002_generic_task")]

    operations = [
        migrations.AddField(
            model_name="task",
            name="result_bytes",
            field=models.PositiveBigIntegerField(default=0),
        ),
        migrations.RunPython(measure_stored_results, migrations.RunPython.noop),
    ]

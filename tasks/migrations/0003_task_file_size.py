from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("tasks", "0002_generic_task")]

    operations = [
        migrations.AddField(
            model_name="task",
            name="file_size",
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
    ]

"""The Task model now belongs to the tasks app (tasks/migrations/0001_initial.py took it over).

State only: the table and its rows stay where they are for tasks' migrations to rename.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("exports", "0002_task_expired_at"),
        ("tasks", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="Task")], database_operations=[]),
    ]

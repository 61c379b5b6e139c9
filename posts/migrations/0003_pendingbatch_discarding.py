"""A pending batch can be marked `discarding`: from then on it takes no new post and is never revealed."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('posts', '0002_batches_and_fingerprints'),
    ]

    operations = [
        migrations.AddField(
            model_name='pendingbatch',
            name='discarding',
            field=models.BooleanField(default=False),
        ),
    ]

from django.db import migrations, models

import tasks.models


def package_again(apps, schema_editor):
    """Model zips are named by their operating point now, and carry it in model.json:
    those packaged before are packaged again when next asked for. Runs trained before
    keep answering every photo (threshold 0)."""
    TrainingRun = apps.get_model("tasks", "TrainingRun")
    TrainingRun.objects.update(export_ready=False)


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0011_review_queues"),
    ]

    operations = [
        migrations.AddField(
            model_name="trainingrun",
            name="operating_threshold",
            field=models.FloatField(
                default=0.0, validators=[tasks.models.check_operating_threshold]
            ),
        ),
        migrations.RunPython(package_again, migrations.RunPython.noop),
    ]

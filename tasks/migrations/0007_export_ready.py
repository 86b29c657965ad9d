from django.core.files.storage import default_storage
from django.db import migrations, models


def record_stored_zips(apps, schema_editor):
    """Runs packaged before the state was stored: ask storage once, here, so that
    listing runs never has to."""
    TrainingRun = apps.get_model("tasks", "TrainingRun")
    for run in TrainingRun.objects.filter(status="ready").exclude(model_folder=""):
        if default_storage.exists(f"{run.model_folder}/export.zip"):
            TrainingRun.objects.filter(pk=run.pk).update(export_ready=True, export_failure="")


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0006_export_failure"),
    ]

    operations = [
        migrations.AddField(
            model_name="trainingrun",
            name="export_ready",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(record_stored_zips, migrations.RunPython.noop),
    ]

from django.db import migrations, models


def package_again(apps, schema_editor):
    """Model zips carry the other formats now, and are named by the model served too:
    those packaged before are packaged again, with them, when next asked for."""
    TrainingRun = apps.get_model("tasks", "TrainingRun")
    TrainingRun.objects.update(export_ready=False)


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0017_image_deleted_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="trainingrun",
            name="held_out",
            field=models.JSONField(default=list),
        ),
        migrations.AddField(
            model_name="trainingrun",
            name="formats",
            field=models.JSONField(default=dict),
        ),
        migrations.AddField(
            model_name="trainingrun",
            name="serves_int8",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(package_again, migrations.RunPython.noop),
    ]

from django.db import migrations, models


def forget_old_features(apps, schema_editor):
    """Features of version 1 (the final pooled features alone) are never read again:
    training computes version 2 for each image once."""
    apps.get_model("tasks", "ImageEmbedding").objects.filter(version=1).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0007_export_ready"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="imageembedding",
            name="embedding_unique_per_model",
        ),
        # The rows stored so far are version 1; new ones are version 2.
        migrations.AddField(
            model_name="imageembedding",
            name="version",
            field=models.PositiveSmallIntegerField(default=1),
        ),
        migrations.AlterField(
            model_name="imageembedding",
            name="version",
            field=models.PositiveSmallIntegerField(default=2),
        ),
        migrations.AddConstraint(
            model_name="imageembedding",
            constraint=models.UniqueConstraint(
                models.F("image"),
                models.F("base_model"),
                models.F("version"),
                name="embedding_unique_per_model_version",
            ),
        ),
        migrations.RunPython(forget_old_features, migrations.RunPython.noop),
    ]

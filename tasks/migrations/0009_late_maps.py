from django.db import migrations, models


def forget_old_features(apps, schema_editor):
    """Features of version 2 have no late maps beside them: training computes version 3
    for each image once (the features are the same; the maps are new)."""
    apps.get_model("tasks", "ImageEmbedding").objects.filter(version__lt=3).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0008_embedding_version"),
    ]

    operations = [
        migrations.RunPython(forget_old_features, migrations.RunPython.noop),
        migrations.AddField(
            model_name="imageembedding",
            name="late_maps",
            field=models.BinaryField(default=b""),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name="imageembedding",
            name="version",
            field=models.PositiveSmallIntegerField(default=3),
        ),
    ]

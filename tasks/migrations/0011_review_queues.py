from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0010_suggestions"),
    ]

    operations = [
        migrations.AddField(
            model_name="image",
            name="suggestion_margin",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="image",
            name="outlier_score",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="image",
            name="reviewed",
            field=models.BooleanField(default=False),
        ),
    ]

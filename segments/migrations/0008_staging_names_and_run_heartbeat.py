""""Stage" means a lifecycle stage only: the recompute's staging tables are renamed
(AggregateStage → AggregateStaging, PredictionStage → PredictionStaging; still
UNLOGGED on PostgreSQL, a rename keeps that). A run records its last progress
(``heartbeat_at``), which stale-run detection reads instead of its age."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("segments", "0007_membership_without_fk_checks")]

    operations = [
        migrations.RenameModel("AggregateStage", "AggregateStaging"),
        migrations.RenameModel("PredictionStage", "PredictionStaging"),
        migrations.AddField(
            model_name="segmentrun",
            name="heartbeat_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="last progress at"),
        ),
    ]

"""On PostgreSQL the staging tables need no WAL: a crash loses only an unpublished run."""

from django.db import migrations


def unlogged(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in ("segments_aggregatestage", "segments_predictionstage"):
            schema_editor.execute(f"ALTER TABLE {table} SET UNLOGGED")


class Migration(migrations.Migration):
    dependencies = [("segments", "0002_default_rule_set")]
    operations = [migrations.RunPython(unlogged, migrations.RunPython.noop)]

"""Rule set v1 with SPEC.md's defaults; admins edit it (a new version) in the admin."""

from django.db import migrations


def seed(apps, schema_editor):
    RuleSet = apps.get_model("segments", "RuleSet")
    if not RuleSet.objects.exists():
        from segments.models import default_rfm_groups, default_rfm_segments

        RuleSet.objects.create(version=1, note="SPEC.md defaults", rfm_groups=default_rfm_groups(),
                               rfm_segments=default_rfm_segments())


class Migration(migrations.Migration):
    dependencies = [("segments", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]

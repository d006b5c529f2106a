"""Seeds the contact policy's defaults (SPEC.md): the caps admins then edit."""

from django.db import migrations

HOUR, DAY = 3600, 86400
CAPS = [
    ("push-3-7", "App push 3-7: at most 1 per 3 h and 7 per day", "push", "", [(3 * HOUR, 1), (DAY, 7)]),
    ("sms-2-8", "SMS 2-8: at most 1 per 2 days and 8 per 30 days", "sms", "", [(2 * DAY, 1), (30 * DAY, 8)]),
    ("wechat-4-1-1-regular", "WeChat 4-1-1: 4 regular a week", "wechat", "regular", [(7 * DAY, 4)]),
    ("wechat-4-1-1-in-depth", "WeChat 4-1-1: 1 in-depth a week", "wechat", "in_depth", [(7 * DAY, 1)]),
    ("wechat-4-1-1-interactive", "WeChat 4-1-1: 1 interactive a week", "wechat", "interactive", [(7 * DAY, 1)]),
    ("all-channels-daily", "Every channel: at most 8 a day", "", "", [(DAY, 8)]),
]


def seed(apps, schema_editor):
    CapRule = apps.get_model("campaigns", "CapRule")
    ContactPolicy = apps.get_model("campaigns", "ContactPolicy")
    for code, name, channel, content_class, windows in CAPS:
        CapRule.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "channel": channel,
                "content_class": content_class,
                "windows": [{"seconds": s, "limit": n} for s, n in windows],
            },
        )
    ContactPolicy.objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]

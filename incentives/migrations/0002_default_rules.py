"""The program's starting rules; admins edit them afterwards in the admin."""

from decimal import Decimal

from django.db import migrations

RULES = [
    # code, name, kind, points, points_per_yuan, streak_days, daily_cap
    ("daily-checkin", "每日签到 Daily check-in", "checkin", 10, 0, 0, 10),
    ("checkin-streak-7", "连续签到7天奖励 7-day streak bonus", "streak", 50, 0, 7, 0),
    ("content-accepted", "内容被采纳 Content accepted", "content", 20, 0, 0, 100),
    ("activity-joined", "参加活动 Activity joined", "activity", 30, 0, 0, 60),
    ("purchase", "购物积分 Purchase points (1 per yuan)", "purchase", 0, Decimal("1"), 0, 0),
    ("invite-accepted", "邀请成功 Invite accepted", "invite", 100, 0, 0, 500),
]
LEVELS = [
    ("普通会员 Member", 0, "基础权益 Basic benefits"),
    ("银卡 Silver", 1000, "生日礼包 Birthday gift; 95折 5% off"),
    ("金卡 Gold", 5000, "专属客服 Dedicated service; 9折 10% off"),
    ("铂金 Platinum", 20000, "免运费 Free shipping; 新品优先 Early access"),
    ("钻石 Diamond", 50000, "专属顾问 Personal advisor; 线下活动 Offline events"),
]
BADGES = [
    ("checkin-king-30", "连续签到王者 Check-in King", "30-day check-in streak", "checkin_streak", 30),
    ("content-master-10", "内容创作大师 Content Master", "10 accepted posts", "content_count", 10),
    ("invite-star-10", "邀请达人 Invite Star", "10 accepted invites", "invite_count", 10),
]


def seed(apps, schema_editor):
    EarningRule = apps.get_model("incentives", "EarningRule")
    Level = apps.get_model("incentives", "Level")
    Badge = apps.get_model("incentives", "Badge")
    IncentivePolicy = apps.get_model("incentives", "IncentivePolicy")
    IncentivePolicy.objects.get_or_create(pk=1)
    for code, name, kind, points, ppy, streak, cap in RULES:
        EarningRule.objects.get_or_create(
            code=code,
            defaults={"name": name, "kind": kind, "points": points, "points_per_yuan": ppy,
                      "streak_days": streak, "daily_cap": cap},
        )
    for name, threshold, benefits in LEVELS:
        Level.objects.get_or_create(threshold=threshold, defaults={"name": name, "benefits": benefits})
    for code, name, description, kind, threshold in BADGES:
        Badge.objects.get_or_create(
            code=code, defaults={"name": name, "description": description, "kind": kind, "threshold": threshold}
        )


class Migration(migrations.Migration):
    dependencies = [("incentives", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]

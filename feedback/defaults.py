"""What a fresh install ships with, installed after every migrate (and after a test
flush) where it is missing — rows an admin has edited are never touched:

- a business calendar "中国大陆工作日" (Asia/Shanghai, Monday-Friday 09:00-12:00 and
  13:00-18:00, so a business day is 8 hours; mainland China's public holidays and
  make-up working days from ``chinese_calendar``);
- the three teams (product, tech, operations) on it;
- one SLA policy per priority (first response / resolution): crisis 1 h / 24 h and
  urgent 24 h ("first solution") / 72 h, both around the clock; high 4 business hours /
  3 business days; normal 1 / 5 business days; low 3 / 10 business days; warnings at 80%;
- the priority matrix (``feedback.priority.default_matrix``) when it is empty;
- a VIP rule when there is none: the super-VIP and core tiers and the high-value RFM
  group are raised one step, to at most urgent."""

from .priority import default_matrix

DAY = 8 * 60  # business minutes in a working day of the default calendar

SLA_DEFAULTS = {
    "crisis": (60, 24 * 60, False),
    "urgent": (24 * 60, 72 * 60, False),
    "high": (4 * 60, 3 * DAY, True),
    "normal": (DAY, 5 * DAY, True),
    "low": (3 * DAY, 10 * DAY, True),
}

WEEKDAY_HOURS = [["09:00", "12:00"], ["13:00", "18:00"]]
CALENDAR_NAME = "中国大陆工作日"


def defaults_install(**_kwargs) -> None:
    from .models import BusinessCalendar, PriorityRule, SlaPolicy, Team, TeamCode, VipRule

    calendar, _ = BusinessCalendar.objects.get_or_create(
        name=CALENDAR_NAME,
        defaults={
            "timezone": "Asia/Shanghai",
            "weekly_hours": {str(d): WEEKDAY_HOURS for d in range(1, 6)},
            "china_holidays": True,
        },
    )
    for code in TeamCode.values:
        Team.objects.get_or_create(code=code, defaults={"calendar": calendar})
    for priority, (first, resolution, business) in SLA_DEFAULTS.items():
        SlaPolicy.objects.get_or_create(
            priority=priority,
            defaults={"first_response_minutes": first, "resolution_minutes": resolution, "business_hours": business},
        )
    if not PriorityRule.objects.exists():
        PriorityRule.objects.bulk_create(
            PriorityRule(impact=i, severity=s, difficulty=d, priority=p) for (i, s, d), p in default_matrix().items()
        )
    if not VipRule.objects.exists():
        VipRule.objects.create(
            name="VIP", tiers=["super_vip", "core"], rfm_groups=["high_value"], raise_by=1, max_priority="urgent"
        )

"""What a fresh install ships with, installed after every migrate (and after a test
flush) where it is missing — rows an admin has edited are never touched:

- a business calendar "中国大陆工作日" (Asia/Shanghai, Monday-Friday 09:00-12:00 and
  13:00-18:00 — a lunch hour off, so a business day is **8 hours**; mainland China's
  public holidays and make-up working days (调休) from ``chinese_calendar``, the
  make-up days working the same 09:00-12:00 and 13:00-18:00);
- the three teams (product, tech, operations) on it (no lead yet: the breach email goes
  to a team's lead once an admin names one);
- one SLA policy per priority, warning at 80% of each target:

  ========  ========================  ==========================  ====================
  priority  first response            resolution                  counted
  ========  ========================  ==========================  ====================
  crisis    1 hour                    24 hours                    around the clock
  urgent    24 hours ("first          72 hours                    around the clock
            solution")
  high      4 business hours          3 business days (24 h)      business hours
  normal    1 business day (8 h)      5 business days (40 h)      business hours
  low       3 business days (24 h)    10 business days (80 h)     business hours
  ========  ========================  ==========================  ====================

  A business day is the calendar's 8 working hours, so "3 business days" is 24 counted
  hours: a high ticket opened on Monday at 09:00 is due on Wednesday at 18:00;
- the priority matrix (``feedback.priority.default_matrix``) when it is empty;
- a VIP rule when there is none: the super-VIP and core tiers and the high-value RFM
  group are raised one step, to at most urgent."""

from decimal import Decimal

from .priority import default_matrix

DAY = 8 * 60  # business minutes in a working day of the default calendar

#: priority → (first response minutes, resolution minutes, business hours only)
SLA_DEFAULTS = {
    "crisis": (60, 24 * 60, False),
    "urgent": (24 * 60, 72 * 60, False),
    "high": (4 * 60, 3 * DAY, True),
    "normal": (DAY, 5 * DAY, True),
    "low": (3 * DAY, 10 * DAY, True),
}
WARN_SHARE = Decimal("0.80")

WEEKDAY_HOURS = [["09:00", "12:00"], ["13:00", "18:00"]]
CALENDAR_NAME = "中国大陆工作日"


def defaults_install(**_kwargs) -> None:
    from .models import BusinessCalendar, PriorityRule, SlaPolicy, Team, TeamCode, VipRule

    calendar, _ = BusinessCalendar.objects.get_or_create(
        name=CALENDAR_NAME,
        defaults={
            "timezone": "Asia/Shanghai",
            "weekly_hours": {str(d): WEEKDAY_HOURS for d in range(1, 6)},
            "workday_hours": WEEKDAY_HOURS,
            "china_holidays": True,
        },
    )
    for code in TeamCode.values:
        Team.objects.get_or_create(code=code, defaults={"calendar": calendar})
    for priority, (first, resolution, business) in SLA_DEFAULTS.items():
        SlaPolicy.objects.get_or_create(
            priority=priority,
            defaults={
                "first_response_minutes": first,
                "resolution_minutes": resolution,
                "business_hours": business,
                "warn_share": WARN_SHARE,
            },
        )
    if not PriorityRule.objects.exists():
        PriorityRule.objects.bulk_create(
            PriorityRule(impact=i, severity=s, difficulty=d, priority=p) for (i, s, d), p in default_matrix().items()
        )
    if not VipRule.objects.exists():
        VipRule.objects.create(
            name="VIP", tiers=["super_vip", "core"], rfm_groups=["high_value"], raise_by=1, max_priority="urgent"
        )

"""When campaigns are due: the minute tick's questions.

- a **one-off** whose time has come: occurrence ``once``;
- a **recurring** one whose schedule (five cron fields, in its timezone) matched a minute
  since its last occurrence (looking back at most ``LOOKBACK`` minutes, so a tick that
  ran late still fires it, once): occurrence ``YYYYMMDDTHHMM`` (local);
- a **triggered** one, per customer, once per occurrence of the trigger:
  ``signup_day`` N — signed up N days ago by their own calendar, occurrence ``signup``;
  ``birthday`` — today is their birthday in their own timezone, occurrence ``birthday-YYYY``;
  ``segment_enter`` — entered the segment since the last tick, occurrence
  ``enter-YYYYMMDD`` (a customer who leaves and comes back another day gets it again);
  ``points_expiring`` N — points lapse within N days, occurrence ``expiring-YYYYWnn``:
  one reminder a week at most while they still have points to lose.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.utils import timezone

from campaigns.models import Campaign, CampaignStatus, ScheduleKind, Trigger
from campaigns.services.campaigns import cron_parse
from incentives import selectors as incentive_selectors
from segments.models import SegmentMembershipChange, StageChange
from users.models import Customer

LOOKBACK = 10  # minutes


@dataclass
class Due:
    campaign_id: int
    occurrence: str
    due: datetime
    customer_ids: list[int] | None = None  # None: the whole audience


def _minute(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


def recurring_due(campaign: Campaign, now: datetime) -> Due | None:
    schedule = cron_parse(campaign.cron, campaign.schedule_timezone)
    zone = ZoneInfo(campaign.schedule_timezone)
    for back in range(LOOKBACK):
        at = _minute(now) - timedelta(minutes=back)
        local = at.astimezone(zone)
        weekday = (local.isoweekday()) % 7  # cron: 0 = Sunday
        if (
            local.minute in schedule.minute
            and local.hour in schedule.hour
            and local.day in schedule.day_of_month
            and local.month in schedule.month_of_year
            and weekday in schedule.day_of_week
        ):
            name = local.strftime("%Y%m%dT%H%M")
            if name > campaign.last_occurrence and at >= campaign.updated_at - timedelta(minutes=LOOKBACK):
                return Due(campaign.pk, name, at)
            return None
    return None


def _zones() -> list[tuple[str, ZoneInfo]]:
    """The customers' timezones in use (a stored name that is no zone means the default)."""
    out = []
    for name in Customer.objects.order_by().values_list("timezone", flat=True).distinct():
        try:
            out.append((name, ZoneInfo(name)))
        except (ZoneInfoNotFoundError, ValueError):
            out.append((name, ZoneInfo(settings.OPS_DEFAULT_CUSTOMER_TIMEZONE)))
    return out


def triggered_due(campaign: Campaign, now: datetime) -> list[Due]:
    """The customers a trigger names now, grouped by occurrence."""
    groups: dict[str, list[int]] = {}
    value = campaign.trigger_value
    if campaign.trigger == Trigger.SIGNUP_DAY:
        # "N days after signup" by each customer's own calendar: one query per timezone in use.
        ids = []
        for zone_name, zone in _zones():
            day = now.astimezone(zone).date() - timedelta(days=int(value))
            start = datetime.combine(day, datetime.min.time(), tzinfo=zone)
            ids += Customer.objects.filter(
                timezone=zone_name, signup_at__gte=start, signup_at__lt=start + timedelta(days=1)
            ).values_list("pk", flat=True)
        groups["signup"] = ids
    elif campaign.trigger == Trigger.BIRTHDAY:
        for zone_name, zone in _zones():
            today = now.astimezone(zone).date()
            ids = Customer.objects.filter(
                timezone=zone_name, birthday__month=today.month, birthday__day=today.day
            ).values_list("pk", flat=True)
            groups.setdefault(f"birthday-{today.year}", []).extend(ids)
    elif campaign.trigger == Trigger.SEGMENT_ENTER:
        since = now - timedelta(days=2)
        if value.startswith("stage-"):
            rows = StageChange.objects.filter(to_stage=value[len("stage-") :], at__gte=since).values_list(
                "customer_id", "at"
            )
        else:
            rows = SegmentMembershipChange.objects.filter(
                segment__slug=value, change="enter", at__gte=since
            ).values_list("customer_id", "at")
        for customer_id, at in rows:
            groups.setdefault(f"enter-{at:%Y%m%d}", []).append(customer_id)
    elif campaign.trigger == Trigger.POINTS_EXPIRING:
        ids = [
            row["customer_id"]
            for row in incentive_selectors.customers_with_points_expiring(within_days=int(value), now=now)
        ]
        year, week, _day = now.isocalendar()
        groups[f"expiring-{year}W{week:02d}"] = ids
    return [Due(campaign.pk, name, _minute(now), sorted(set(ids))) for name, ids in groups.items() if ids]


def due_now(*, now: datetime | None = None) -> list[Due]:
    now = now or timezone.now()
    out: list[Due] = []
    active = Campaign.objects.filter(status__in=[CampaignStatus.SCHEDULED, CampaignStatus.RUNNING])
    for campaign in active.filter(schedule=ScheduleKind.ONCE, status=CampaignStatus.SCHEDULED, start_at__lte=now):
        out.append(Due(campaign.pk, "once", campaign.start_at))
    for campaign in active.filter(schedule=ScheduleKind.RECURRING):
        due = recurring_due(campaign, now)
        if due is not None:
            out.append(due)
    for campaign in active.filter(schedule=ScheduleKind.TRIGGERED):
        out.extend(triggered_due(campaign, now))
    return out

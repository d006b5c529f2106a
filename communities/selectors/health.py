"""Reads of the daily group health table (``GroupHealthDay``, written by
``communities.services.health``).

A period is the last N complete operators' days: it ends yesterday (today is rolled
up only on demand, and the nightly run fills yesterday). Over a period a group's
figures are: members at the end (the last day's), messages, joins and leaves summed,
active members as a daily average, the leave rate as the period's leaves over the
members at its start (the first rolled-up day's members − joins + leaves: the daily
definition stretched over the period), and check-in / activity participation as daily averages."""

from datetime import date, timedelta

from django.db.models import Avg, Count, Max, Min, Sum
from django.utils import timezone

from core.timezones import operator_timezone

from .. import access
from ..models import CommunityGroup, GroupHealthDay

PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30
SORT_KEYS = (
    "name",
    "members",
    "messages",
    "active_members",
    "joins",
    "leaves",
    "leave_rate",
    "checkin_rate",
    "activity_rate",
)
DAY_FIELDS = (
    "members",
    "messages",
    "active_members",
    "joins",
    "leaves",
    "leave_rate",
    "checkins",
    "checkin_rate",
    "activity_signups",
    "activity_rate",
)


def period_days(value) -> int:
    """7, 30 or 90 from a query parameter; anything else is the default (30)."""
    try:
        days = int(value)
    except (TypeError, ValueError):
        return DEFAULT_PERIOD
    return days if days in PERIODS else DEFAULT_PERIOD


def period_bounds(days: int, *, today: date | None = None) -> tuple[date, date]:
    today = today or timezone.now().astimezone(operator_timezone()).date()
    end = today - timedelta(days=1)
    return end - timedelta(days=days - 1), end


def group_series(*, group: CommunityGroup, start: date, end: date) -> list[dict]:
    """Each day of [start, end], oldest first; a day not rolled up yet has ``missing``
    set and zeros (the chart draws it as a gap in the numbers table, not a drop)."""
    rows = {
        r["day"]: r
        for r in GroupHealthDay.objects.filter(group=group, day__gte=start, day__lte=end).values("day", *DAY_FIELDS)
    }
    out = []
    for i in range((end - start).days + 1):
        day = start + timedelta(days=i)
        row = rows.get(day)
        out.append({**row, "missing": False} if row else {"day": day, **dict.fromkeys(DAY_FIELDS, 0), "missing": True})
    return out


def _sort_value(row: dict, key: str):
    value = row["group"].name if key == "name" else row[key]
    return (value is None, value if value is not None else 0)


def groups_compare(*, user, start: date, end: date, sort: str = "leave_rate", descending: bool = True) -> list[dict]:
    """The period's figures of every group the user may see, sorted by ``sort`` (one of
    ``SORT_KEYS``; groups without figures last). Three queries whatever the number of
    groups."""
    groups = {g.pk: g for g in access.groups_visible(user).order_by("name", "id")}
    days = GroupHealthDay.objects.filter(group_id__in=list(groups), day__gte=start, day__lte=end)
    totals = {
        r["group_id"]: r
        for r in days.values("group_id")
        .annotate(
            days=Count("id"),
            first=Min("day"),
            last=Max("day"),
            messages=Sum("messages"),
            active_members=Avg("active_members"),
            joins=Sum("joins"),
            leaves=Sum("leaves"),
            checkin_rate=Avg("checkin_rate"),
            activity_rate=Avg("activity_rate"),
        )
        .order_by()
    }
    # Members at the start and the end come from each group's first and last rolled-up
    # day in the period (a period may begin before the group's figures do).
    edges = {(pk, t["first"]) for pk, t in totals.items()} | {(pk, t["last"]) for pk, t in totals.items()}
    first_last = {}
    edge_days = {day for _pk, day in edges}
    for r in days.filter(day__in=edge_days).values("group_id", "day", "members", "joins", "leaves"):
        t = totals[r["group_id"]]
        if r["day"] == t["first"]:
            first_last[(r["group_id"], True)] = r
        if r["day"] == t["last"]:
            first_last[(r["group_id"], False)] = r
    rows = []
    for pk, group in groups.items():
        t = totals.get(pk)
        if t is None:
            rows.append({"group": group, **dict.fromkeys(SORT_KEYS[1:]), "days": 0})
            continue
        first, last = first_last.get((pk, True)), first_last.get((pk, False))
        at_start = first["members"] - first["joins"] + first["leaves"] if first else None
        rows.append(
            {
                "group": group,
                "days": t["days"],
                "members": last["members"] if last else None,
                "messages": t["messages"],
                "active_members": t["active_members"],
                "joins": t["joins"],
                "leaves": t["leaves"],
                "leave_rate": (t["leaves"] / at_start if at_start else 0.0) if at_start is not None else None,
                "checkin_rate": t["checkin_rate"],
                "activity_rate": t["activity_rate"],
            }
        )
    key = sort if sort in SORT_KEYS else "leave_rate"
    # ``rows`` are by name; the sort is stable (also reversed), so ties stay by name.
    with_values = sorted(
        (r for r in rows if r[key] is not None or key == "name"),
        key=lambda r: _sort_value(r, key),
        reverse=descending,
    )
    return with_values + [r for r in rows if r[key] is None and key != "name"]

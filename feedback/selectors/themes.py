"""Reads for the themes pages: themes with their ticket count and weekly trend, a
theme's tickets, the product roadmap.

Counts leave out tickets merged into another (a duplicate is one complaint, counted on
the ticket it was merged into). Weeks are ISO weeks (Monday to Sunday) in the
operators' timezone."""

from datetime import date, datetime, time, timedelta

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncWeek
from django.utils import timezone

from core.errors import NotFound
from core.timezones import operator_timezone

from ..models import RoadmapItem, Theme, Ticket

TREND_WEEKS = 8
THEME_TICKETS_SHOWN = 100

_COUNTED = Q(tickets__merged_into__isnull=True)


def trend_weeks(*, now: datetime | None = None, weeks: int = TREND_WEEKS) -> list[date]:
    """The Mondays of the last ``weeks`` ISO weeks, oldest first; the last is this week's."""
    today = timezone.localdate(now or timezone.now(), timezone=operator_timezone())
    this_monday = today - timedelta(days=today.weekday())
    return [this_monday - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]


def themes_weekly_counts(
    *, theme_ids: list[int] | None = None, now: datetime | None = None, weeks: int = TREND_WEEKS
) -> dict[int, list[int]]:
    """``{theme id: [tickets created in each week, oldest first]}`` for the last ``weeks``
    weeks, from one GROUP BY query over every theme (or those in ``theme_ids``). A
    theme with no ticket in the window is absent."""
    now = now or timezone.now()
    mondays = trend_weeks(now=now, weeks=weeks)
    tz = operator_timezone()
    start = datetime.combine(mondays[0], time.min, tzinfo=tz)
    tickets = Ticket.objects.filter(
        theme__isnull=False, merged_into__isnull=True, created_at__gte=start, created_at__lte=now
    )
    if theme_ids is not None:
        tickets = tickets.filter(theme_id__in=theme_ids)
    rows = (
        tickets.annotate(week=TruncWeek("created_at", tzinfo=tz))
        .values("theme_id", "week")
        .annotate(n=Count("id"))
        .order_by()
    )
    position = {monday: i for i, monday in enumerate(mondays)}
    out: dict[int, list[int]] = {}
    for row in rows:
        week = row["week"]
        day = week.astimezone(tz).date() if isinstance(week, datetime) else week
        if day in position:
            out.setdefault(row["theme_id"], [0] * weeks)[position[day]] += row["n"]
    return out


def theme_list(*, statuses: list[str] | None = None) -> QuerySet[Theme]:
    """Themes (every status unless ``statuses`` says) with ``ticket_count``, largest
    first; ``roadmap_item`` comes with them."""
    themes = Theme.objects.all()
    if statuses is not None:
        themes = themes.filter(status__in=statuses)
    return (
        themes.select_related("roadmap_item")
        .annotate(ticket_count=Count("tickets", filter=_COUNTED))
        .order_by("-ticket_count", "-updated_at", "-id")
    )


def theme_get(*, theme_id: int) -> Theme:
    try:
        return (
            Theme.objects.select_related("roadmap_item")
            .annotate(ticket_count=Count("tickets", filter=_COUNTED))
            .get(pk=theme_id)
        )
    except Theme.DoesNotExist as exc:
        raise NotFound(f"No theme {theme_id}.", code="theme_not_found") from exc


def theme_tickets(*, theme: Theme, limit: int = THEME_TICKETS_SHOWN) -> list[Ticket]:
    """The theme's most recent tickets (duplicates merged away left out)."""
    return list(
        Ticket.objects.filter(theme=theme, merged_into__isnull=True)
        .order_by("-created_at", "-id")
        .only("id", "subject", "status", "priority", "category", "created_at")[:limit]
    )


def roadmap_list(*, status: str | None = None) -> QuerySet[RoadmapItem]:
    """Roadmap items with their theme and its ``ticket_count``, the most recently changed first."""
    items = RoadmapItem.objects.all()
    if status:
        items = items.filter(status=status)
    return (
        items.select_related("theme")
        .annotate(ticket_count=Count("theme__tickets", filter=Q(theme__tickets__merged_into__isnull=True)))
        .order_by("-updated_at", "-id")
    )


def roadmap_item_get(*, item_id: int) -> RoadmapItem:
    try:
        return RoadmapItem.objects.select_related("theme").get(pk=item_id)
    except RoadmapItem.DoesNotExist as exc:
        raise NotFound(f"No roadmap item {item_id}.", code="roadmap_item_not_found") from exc

"""Reads of the SLA clock: the compiled calendars, each ticket's two targets as the API
and the pages show them, and the recent escalations for the dashboards."""

from collections.abc import Iterable
from datetime import date, datetime

from django.db.models import QuerySet
from django.utils import timezone

from ..models import BusinessCalendar, CalendarDate, Escalation, SlaTarget, Team
from ..sla import WorkingTime, china_holidays_known_until, counted_seconds, working_time_from

KIND_ORDER = {SlaTarget.Kind.FIRST_RESPONSE: 0, SlaTarget.Kind.RESOLUTION: 1}
STOPPED = {SlaTarget.State.MET, SlaTarget.State.BREACHED}


def working_times(*, calendar_ids: Iterable[int]) -> dict[int, WorkingTime]:
    """The compiled calendars by id, in two queries. Raises ``ApplicationError`` for a
    calendar whose hours the clock cannot use (see ``feedback.sla.working_time_check``)."""
    ids = set(calendar_ids)
    if not ids:
        return {}
    dates: dict[int, dict] = {pk: {} for pk in ids}
    for calendar_id, day, kind in CalendarDate.objects.filter(calendar_id__in=ids).values_list(
        "calendar_id", "date", "kind"
    ):
        dates[calendar_id][day] = kind
    return {c.pk: working_time_from(c, dates[c.pk]) for c in BusinessCalendar.objects.filter(pk__in=ids)}


def calendar_working_time(*, calendar: BusinessCalendar) -> WorkingTime:
    return working_times(calendar_ids=[calendar.pk])[calendar.pk]


def target_working_time(target: SlaTarget, cache: dict[int, WorkingTime]) -> WorkingTime | None:
    """The target's counting calendar (None: around the clock), compiled once per ``cache``."""
    if not target.business_hours or target.calendar_id is None:
        return None
    if target.calendar_id not in cache:
        cache |= working_times(calendar_ids=[target.calendar_id])
    return cache[target.calendar_id]


def target_counted(target: SlaTarget, now: datetime, wt: WorkingTime | None) -> int:
    """Counted seconds so far: what was counted before the current run, plus the run."""
    counted = target.consumed_seconds
    if target.state == SlaTarget.State.RUNNING and target.running_since is not None:
        counted += counted_seconds(target.running_since, now, wt)
    return counted


def _target_row(target: SlaTarget, now: datetime, wt: WorkingTime | None, detail: bool) -> dict:
    counted = target_counted(target, now, wt)
    paused = target.paused_seconds
    if target.state == SlaTarget.State.PAUSED and target.paused_since is not None:
        paused += max(0, int((now - target.paused_since).total_seconds()))
    row = {
        "target": target.kind,
        "target_seconds": target.target_seconds,
        "business_hours": target.business_hours,
        "due_at": target.due_at,
        "seconds_left": target.target_seconds - counted,
        "state": target.state,
        "warned": target.warned_at is not None,
        # over its target now, or escalated once (that is never undone)
        "breached": target.breached_at is not None
        or target.state == SlaTarget.State.BREACHED
        or counted > target.target_seconds,
        "paused_seconds": paused,
    }
    if detail:
        row |= {
            "started_at": target.started_at,
            "warn_at": target.warn_at,
            "stopped_at": target.stopped_at,
            "counted_seconds": counted,
            "warned_at": target.warned_at,
            "breached_at": target.breached_at,
        }
    return row


def sla_states(
    *, ticket_ids: Iterable[int], now: datetime | None = None, detail: bool = False
) -> dict[int, list[dict]]:
    """``sla_state`` for many tickets in three queries (targets, calendars, their dates);
    a ticket without targets maps to ``[]``. ``detail`` adds ``started_at``, ``warn_at``,
    ``stopped_at``, ``counted_seconds``, ``warned_at`` and ``breached_at`` (the pages'
    timeline; the API shows the plain row)."""
    now = now or timezone.now()
    ids = list(ticket_ids)
    targets = list(SlaTarget.objects.filter(ticket_id__in=ids))
    cache = working_times(
        calendar_ids={
            t.calendar_id for t in targets if t.business_hours and t.calendar_id and t.state == SlaTarget.State.RUNNING
        }
    )
    out: dict[int, list[dict]] = {pk: [] for pk in ids}
    for t in sorted(targets, key=lambda t: (t.ticket_id, KIND_ORDER.get(t.kind, 9))):
        wt = target_working_time(t, cache) if t.state == SlaTarget.State.RUNNING else None
        out[t.ticket_id].append(_target_row(t, now, wt, detail))
    return out


def sla_state(*, ticket, now: datetime | None = None, detail: bool = False) -> list[dict]:
    """Both targets of a ticket, first response then resolution, each a dict: ``target``
    (the kind: first_response/resolution), ``target_seconds``, ``business_hours``,
    ``due_at`` (while running; null while paused or stopped), ``seconds_left`` (counted
    seconds, negative when overdue), ``state`` (running/paused/met/breached), ``warned``,
    ``breached`` (over the target now, or escalated once), and ``paused_seconds`` (wall
    time waiting on the customer, the current wait included). ``detail``: see
    ``sla_states``."""
    return sla_states(ticket_ids=[ticket.pk], now=now, detail=detail)[ticket.pk]


def escalations_recent(*, since: datetime, team: Team | None = None) -> QuerySet[Escalation]:
    """Warnings and breaches since ``since``, newest first, with their ticket and team
    (for the dashboard and the queue's banner)."""
    rows = Escalation.objects.filter(at__gte=since).select_related("ticket", "team").order_by("-at", "-id")
    if team is not None:
        rows = rows.filter(team=team)
    return rows


def china_holidays_gap(*, today: date) -> int | None:
    """A year the clock needs soon (this one, or the next from November on) for which
    ``chinese_calendar`` has no holiday data and no calendar has admin-added dates;
    None when every such year is covered."""
    needed = [today.year, today.year + 1] if today.month >= 11 else [today.year]
    known = china_holidays_known_until()
    for year in needed:
        if year > known and not CalendarDate.objects.filter(date__year=year, calendar__china_holidays=True).exists():
            return year
    return None

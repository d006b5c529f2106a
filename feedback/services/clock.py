"""The SLA clock's writes: each ticket's two targets (first response, resolution),
started when the ticket opens and moved by its status, its first public reply and its
priority. The ticket services call these inside their own transaction; each function
also opens one (``atomic`` nests) so it is safe alone.

How a target moves:

- **running** — counts; ``due_at``/``warn_at`` say when it reaches its target and the
  warning share (the escalation sweep finds them there);
- **paused** while the ticket waits on the customer — the counted time so far moves to
  ``consumed_seconds``, the wall time of the wait to ``paused_seconds`` on resume;
- **met / breached** when it stops: the first public reply stops the first-response
  target; resolving stops the resolution target and, if still going, the first-response
  one (a resolution answers the customer too). Breached = over the target at the stop,
  or escalated by the sweep before (``breached_at`` is never cleared).
- **reopen** (resolved/closed → open): the resolution target counts on from where it
  stopped, the time already counted kept, its met/breached verdict cleared until the
  next resolution — the customer's problem was not solved, so the time it took so far
  still counts, while the days it sat resolved do not. A target already over its
  target is due at once, so a reopened late ticket is escalated (once) by the next
  sweep unless it was before. The first-response target never restarts.

Lock order is the ticket row, then its targets, the same as the sweep's, so a request
and a sweep touching one ticket queue instead of deadlocking. The clock never writes
``warned_at``/``breached_at``: those belong to the sweep.
"""

from datetime import datetime

from django.db import transaction

from ..models import BusinessCalendar, SlaPolicy, SlaTarget, Status, Ticket
from ..selectors.sla import STOPPED, target_counted, target_working_time, working_times
from ..sla import WorkingTime, add_counted, share_of, working_time_check

RUNNING, PAUSED = SlaTarget.State.RUNNING, SlaTarget.State.PAUSED
MET, BREACHED = SlaTarget.State.MET, SlaTarget.State.BREACHED
FIRST_RESPONSE, RESOLUTION = SlaTarget.Kind.FIRST_RESPONSE, SlaTarget.Kind.RESOLUTION
DONE_STATUSES = {Status.RESOLVED, Status.CLOSED}

#: what the clock writes (never warned_at / breached_at: the sweep's)
CLOCK_FIELDS = [
    "target_seconds",
    "business_hours",
    "calendar",
    "warn_share",
    "consumed_seconds",
    "running_since",
    "paused_seconds",
    "paused_since",
    "due_at",
    "warn_at",
    "stopped_at",
    "state",
]


# --- helpers ------------------------------------------------------------------------


def _locked_targets(ticket: Ticket) -> list[SlaTarget]:
    list(Ticket.objects.select_for_update().filter(pk=ticket.pk).values_list("pk", flat=True))
    return list(SlaTarget.objects.select_for_update().filter(ticket_id=ticket.pk).order_by("kind"))


def _default_calendar(ticket: Ticket) -> BusinessCalendar | None:
    """The team's calendar, else the first calendar there is, else none (around the clock)."""
    if ticket.team_id is not None and ticket.team.calendar_id is not None:
        return ticket.team.calendar
    return BusinessCalendar.objects.order_by("pk").first()


def _minutes(policy: SlaPolicy | None, kind: str) -> int | None:
    if policy is None:
        return None
    return policy.first_response_minutes if kind == FIRST_RESPONSE else policy.resolution_minutes


def _mode(target: SlaTarget) -> str:
    if target.state in STOPPED:
        return "stopped"
    return "paused" if target.state == PAUSED else "running"


def _wanted(kind: str, stopped_first_response: bool, status: str) -> str:
    """Where a target should be for a ticket in ``status``."""
    if kind == FIRST_RESPONSE and stopped_first_response:
        return "stopped"
    if status in DONE_STATUSES:
        return "stopped"
    return "paused" if status == Status.WAITING else "running"


def _schedule(t: SlaTarget, now: datetime, wt: WorkingTime | None) -> None:
    """From ``now``, when the remaining counted time runs out (and the warning share)."""
    t.due_at = add_counted(now, t.target_seconds - t.consumed_seconds, wt)
    t.warn_at = add_counted(now, share_of(t.target_seconds, t.warn_share) - t.consumed_seconds, wt)


def _end_pause(t: SlaTarget, now: datetime) -> None:
    if t.paused_since is not None:
        t.paused_seconds += max(0, int((now - t.paused_since).total_seconds()))
        t.paused_since = None


def _run(t: SlaTarget, now: datetime, wt: WorkingTime | None) -> None:
    _end_pause(t, now)
    t.state, t.running_since, t.stopped_at = RUNNING, now, None
    _schedule(t, now, wt)


def _pause(t: SlaTarget, now: datetime, wt: WorkingTime | None) -> None:
    t.consumed_seconds = target_counted(t, now, wt)
    t.state, t.running_since, t.paused_since, t.stopped_at = PAUSED, None, now, None
    t.due_at = t.warn_at = None


def _stop(t: SlaTarget, now: datetime, wt: WorkingTime | None) -> None:
    counted = target_counted(t, now, wt)
    late = counted > t.target_seconds or (t.state == RUNNING and t.due_at is not None and now > t.due_at)
    _end_pause(t, now)
    t.consumed_seconds = counted
    t.state = BREACHED if late or t.breached_at is not None else MET
    t.running_since = t.due_at = t.warn_at = None
    t.stopped_at = now


def _move(t: SlaTarget, wanted: str, now: datetime, wt: WorkingTime | None) -> bool:
    """Moves one target to ``wanted``; False when it is there already."""
    current = _mode(t)
    if current == wanted:
        return False
    if wanted == "running":
        _run(t, now, wt)
    elif wanted == "paused":
        _pause(t, now, wt)
    else:
        _stop(t, now, wt)
    return True


def _new_target(
    *, ticket: Ticket, kind: str, policy: SlaPolicy, calendar: BusinessCalendar | None, now: datetime
) -> SlaTarget:
    return SlaTarget(
        ticket=ticket,
        kind=kind,
        target_seconds=_minutes(policy, kind) * 60,
        business_hours=calendar is not None,
        calendar=calendar,
        warn_share=policy.warn_share,
        started_at=now,
        # born stopped (so _move runs it); the wanted mode decides what it becomes
        state=MET,
    )


def _terms(ticket: Ticket) -> tuple[SlaPolicy | None, BusinessCalendar | None, WorkingTime | None]:
    policy = SlaPolicy.objects.filter(priority=ticket.priority).first()
    calendar = _default_calendar(ticket) if policy is not None and policy.business_hours else None
    wt = working_times(calendar_ids=[calendar.pk])[calendar.pk] if calendar is not None else None
    return policy, calendar, wt


def _add_missing(
    *, ticket: Ticket, have: set[str], terms: tuple, now: datetime, first_responded: bool
) -> list[SlaTarget]:
    """New targets for the kinds the policy has and the ticket lacks, started ``now``
    in the mode its status asks for (none for a target already done)."""
    policy, calendar, wt = terms
    created = []
    for kind in (FIRST_RESPONSE, RESOLUTION):
        if kind in have or _minutes(policy, kind) is None:
            continue
        wanted = _wanted(kind, first_responded, ticket.status)
        if wanted == "stopped":
            continue
        target = _new_target(ticket=ticket, kind=kind, policy=policy, calendar=calendar, now=now)
        _move(target, wanted, now, wt)
        created.append(target)
    return SlaTarget.objects.bulk_create(created)


# --- the services -------------------------------------------------------------------


@transaction.atomic
def sla_targets_start(*, ticket: Ticket, now: datetime) -> list[SlaTarget]:
    """Creates the ticket's targets from the policy of its priority and its team's
    calendar (or the first calendar; around the clock when there is none or the policy
    says so). A priority without a policy, or a null target, gets no row. Raises
    ``ApplicationError`` (``calendar_no_working_time``, ``calendar_hours_invalid``) when
    the calendar is unusable, so the ticket's transaction writes nothing."""
    have = set(SlaTarget.objects.filter(ticket_id=ticket.pk).values_list("kind", flat=True))
    return _add_missing(
        ticket=ticket, have=have, terms=_terms(ticket), now=now, first_responded=ticket.first_responded_at is not None
    )


@transaction.atomic
def sla_on_status(*, ticket: Ticket, old: str, new: str, now: datetime) -> None:
    """The ticket moved from ``old`` to ``new`` (see the module docstring for what each
    status does to the targets). ``old`` is informative: the targets' own state says
    where they are, so a call is idempotent."""
    targets = _locked_targets(ticket)
    first_stopped = any(t.kind == FIRST_RESPONSE and t.state in STOPPED for t in targets)
    cache: dict[int, WorkingTime] = {}
    changed = [t for t in targets if _move(t, _wanted(t.kind, first_stopped, new), now, target_working_time(t, cache))]
    if changed:
        SlaTarget.objects.bulk_update(changed, CLOCK_FIELDS)


@transaction.atomic
def sla_first_response(*, ticket: Ticket, now: datetime) -> None:
    """The first public reply: the first-response target stops, met when it came by
    the due time (breached otherwise). Later replies change nothing."""
    targets = [t for t in _locked_targets(ticket) if t.kind == FIRST_RESPONSE and t.state not in STOPPED]
    cache: dict[int, WorkingTime] = {}
    for t in targets:
        _stop(t, now, target_working_time(t, cache))
    if targets:
        SlaTarget.objects.bulk_update(targets, CLOCK_FIELDS)


@transaction.atomic
def sla_reprioritize(*, ticket: Ticket, now: datetime) -> None:
    """The ticket's priority (or team, hence calendar) changed: each target that is
    still going takes its target, counting mode, calendar and warning share from the
    new priority's policy, keeps the time counted so far, and is due again from now.
    A stopped target keeps its verdict; ``warned_at``/``breached_at`` stay, so an
    escalation's own raise never re-warns or re-breaches the target that caused it.
    A target the new policy lacks keeps its old terms; a target it adds starts now."""
    targets = _locked_targets(ticket)
    terms = _terms(ticket)
    policy, calendar, new_wt = terms
    cache: dict[int, WorkingTime] = {}
    changed = []
    for t in targets:
        minutes = _minutes(policy, t.kind)
        if minutes is None or t.state in STOPPED:
            continue
        if t.state == RUNNING:
            t.consumed_seconds = target_counted(t, now, target_working_time(t, cache))
            t.running_since = now
        t.target_seconds, t.warn_share = minutes * 60, policy.warn_share
        t.business_hours, t.calendar = calendar is not None, calendar
        if t.state == RUNNING:
            _schedule(t, now, new_wt)
        changed.append(t)
    if changed:
        SlaTarget.objects.bulk_update(changed, CLOCK_FIELDS)
    if policy is not None:
        _add_missing(
            ticket=ticket,
            have={t.kind for t in targets},
            terms=terms,
            now=now,
            first_responded=ticket.first_responded_at is not None,
        )


@transaction.atomic
def business_calendar_save(
    *,
    calendar: BusinessCalendar | None = None,
    name: str,
    timezone: str = "Asia/Shanghai",
    weekly_hours: dict,
    workday_hours: list | None = None,
    china_holidays: bool = True,
) -> BusinessCalendar:
    """Creates or updates a calendar after checking its hours: ``ApplicationError``
    (``calendar_no_working_time``, ``calendar_hours_invalid``) and nothing written when
    the clock could not use them. Running targets keep the due times they have; they
    move to the new hours at their next pause, resume or reprioritize."""
    working_time_check(weekly_hours, workday_hours=workday_hours, timezone=timezone)
    calendar = calendar or BusinessCalendar()
    calendar.name, calendar.timezone, calendar.china_holidays = name, timezone, china_holidays
    calendar.weekly_hours, calendar.workday_hours = weekly_hours, list(workday_hours or [])
    calendar.save()
    return calendar

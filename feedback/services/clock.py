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

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction

from ..models import BusinessCalendar, SlaPolicy, SlaTarget, Status, Team, Ticket
from ..selectors.sla import STOPPED, target_counted, target_working_time, working_times
from ..sla import WorkingTime, add_counted, share_of

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


def _new_target(*, ticket_id: int, kind: str, terms: "_Terms", now: datetime) -> SlaTarget:
    return SlaTarget(
        ticket_id=ticket_id,
        kind=kind,
        target_seconds=_minutes(terms.policy, kind) * 60,
        business_hours=terms.calendar_id is not None,
        calendar_id=terms.calendar_id,
        warn_share=terms.policy.warn_share,
        started_at=now,
        # born stopped (so _move runs it); the wanted mode decides what it becomes
        state=MET,
    )


@dataclass(frozen=True)
class _Terms:
    """What a ticket's targets count against: its priority's policy and, when that
    counts business hours, the calendar (its team's, else the first there is)."""

    policy: SlaPolicy | None
    calendar_id: int | None
    wt: WorkingTime | None


def _terms_for(tickets: list[Ticket], *, also_calendars: Iterable[int] = ()) -> tuple[dict, dict]:
    """({ticket id: _Terms}, {calendar id: WorkingTime}) for many tickets in at most five
    queries (policies, teams' calendars, the default calendar, calendars and their dates).
    ``also_calendars`` are compiled too (the calendars the targets counted on so far)."""
    policies = {p.priority: p for p in SlaPolicy.objects.filter(priority__in={t.priority for t in tickets})}
    team_ids = {t.team_id for t in tickets if t.team_id is not None}
    team_calendars = dict(Team.objects.filter(pk__in=team_ids).values_list("pk", "calendar_id")) if team_ids else {}
    default_id = None
    wanted: dict[int, int | None] = {}
    for t in tickets:
        policy = policies.get(t.priority)
        calendar_id = team_calendars.get(t.team_id) if policy is not None and policy.business_hours else None
        if policy is not None and policy.business_hours and calendar_id is None:
            if default_id is None:
                default_id = BusinessCalendar.objects.order_by("pk").values_list("pk", flat=True).first() or 0
            calendar_id = default_id or None  # no calendar at all: around the clock
        wanted[t.pk] = calendar_id
    wts = working_times(calendar_ids={c for c in wanted.values() if c} | set(also_calendars))
    terms = {t.pk: _Terms(policies.get(t.priority), wanted[t.pk], wts.get(wanted[t.pk])) for t in tickets}
    return terms, wts


def _add_missing(*, tickets: list[Ticket], have: dict[int, set[str]], terms: dict, now: datetime) -> list[SlaTarget]:
    """New targets for the kinds each ticket's policy has and the ticket lacks, started
    ``now`` in the mode its status asks for (none for a target already done)."""
    created = []
    for ticket in tickets:
        t_terms = terms[ticket.pk]
        for kind in (FIRST_RESPONSE, RESOLUTION):
            if kind in have.get(ticket.pk, set()) or _minutes(t_terms.policy, kind) is None:
                continue
            wanted = _wanted(kind, ticket.first_responded_at is not None, ticket.status)
            if wanted == "stopped":
                continue
            target = _new_target(ticket_id=ticket.pk, kind=kind, terms=t_terms, now=now)
            _move(target, wanted, now, t_terms.wt)
            created.append(target)
    return SlaTarget.objects.bulk_create(created)


def rows_update(model, objs: list, fields: list[str], *, chunk: int = 500) -> None:
    """Writes ``fields`` of ``objs`` back in one ``UPDATE … FROM (VALUES …)`` per chunk.
    Django's ``bulk_update`` builds a CASE per row and field and costs seconds for a few
    thousand rows; this is one statement. PostgreSQL gets each value cast to its
    column's type (a VALUES list of bare literals would be text); SQLite takes them as the
    ORM stores them. Both name a VALUES list's columns column1, column2, …"""
    if not objs:
        return
    meta = model._meta
    pk, columns = meta.pk, [meta.get_field(f) for f in fields]
    qn = connection.ops.quote_name
    typed = connection.vendor == "postgresql"

    def slot(field) -> str:
        return f"CAST(%s AS {field.db_type(connection)})" if typed else "%s"

    # psycopg2 adapts plain Python values itself; the ORM's preparation (a Python call per
    # value) is only needed for JSON there, and for everything on SQLite.
    prepared = [not typed or f.get_internal_type() == "JSONField" for f in columns]
    row = "(" + ", ".join([slot(pk), *(slot(f) for f in columns)]) + ")"
    sets = ", ".join(f"{qn(f.column)} = v.column{i + 2}" for i, f in enumerate(columns))
    table = qn(meta.db_table)
    with connection.cursor() as cursor:
        for start in range(0, len(objs), chunk):
            part = objs[start : start + chunk]
            params = []
            for obj in part:
                params.append(obj.pk)
                params += [
                    f.get_db_prep_save(getattr(obj, f.attname), connection) if prep else getattr(obj, f.attname)
                    for f, prep in zip(columns, prepared, strict=True)
                ]
            cursor.execute(
                f"UPDATE {table} SET {sets} FROM (VALUES {', '.join([row] * len(part))}) AS v "
                f"WHERE {table}.{qn(pk.column)} = v.column1",
                params,
            )


def _retime(t: SlaTarget, terms: _Terms, now: datetime, old_wt: WorkingTime | None) -> bool:
    """One target takes the terms of its ticket's (new) priority; False when it keeps its own."""
    minutes = _minutes(terms.policy, t.kind)
    if minutes is None or t.state in STOPPED:
        return False
    if t.state == RUNNING:
        t.consumed_seconds = target_counted(t, now, old_wt)
        t.running_since = now
    t.target_seconds, t.warn_share = minutes * 60, terms.policy.warn_share
    t.business_hours, t.calendar_id = terms.calendar_id is not None, terms.calendar_id
    if t.state == RUNNING:
        _schedule(t, now, terms.wt)
    return True


def targets_retime(*, tickets: list[Ticket], now: datetime) -> None:
    """``sla_reprioritize`` for many tickets at once, in a fixed number of queries (the
    escalation sweep re-times every ticket it raised with one call). The caller holds
    the tickets' row locks; the clock's services take them in the same order."""
    if not tickets:
        return
    targets = list(SlaTarget.objects.filter(ticket_id__in=[t.pk for t in tickets]).order_by("ticket_id", "kind"))
    old_calendars = {t.calendar_id for t in targets if t.business_hours and t.calendar_id}
    terms, wts = _terms_for(tickets, also_calendars=old_calendars)
    changed = []
    for t in targets:
        old_wt = wts.get(t.calendar_id) if t.business_hours and t.calendar_id else None
        if _retime(t, terms[t.ticket_id], now, old_wt):
            changed.append(t)
    rows_update(SlaTarget, changed, CLOCK_FIELDS)
    have: dict[int, set[str]] = {}
    for t in targets:
        have.setdefault(t.ticket_id, set()).add(t.kind)
    _add_missing(tickets=[t for t in tickets if terms[t.pk].policy is not None], have=have, terms=terms, now=now)


# --- the services -------------------------------------------------------------------


@transaction.atomic
def sla_targets_start(*, ticket: Ticket, now: datetime) -> list[SlaTarget]:
    """Creates the ticket's targets from the policy of its priority and its team's
    calendar (or the first calendar; around the clock when there is none or the policy
    says so). A priority without a policy, or a null target, gets no row. Raises
    ``ApplicationError`` (``calendar_no_working_time``, ``calendar_hours_invalid``) when
    the calendar is unusable, so the ticket's transaction writes nothing."""
    have = {ticket.pk: set(SlaTarget.objects.filter(ticket_id=ticket.pk).values_list("kind", flat=True))}
    terms, _wts = _terms_for([ticket])
    return _add_missing(tickets=[ticket], have=have, terms=terms, now=now)


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
        rows_update(SlaTarget, changed, CLOCK_FIELDS)


@transaction.atomic
def sla_first_response(*, ticket: Ticket, now: datetime) -> None:
    """The first public reply: the first-response target stops, met when it came by
    the due time (breached otherwise). Later replies change nothing."""
    targets = [t for t in _locked_targets(ticket) if t.kind == FIRST_RESPONSE and t.state not in STOPPED]
    cache: dict[int, WorkingTime] = {}
    for t in targets:
        _stop(t, now, target_working_time(t, cache))
    if targets:
        rows_update(SlaTarget, targets, CLOCK_FIELDS)


@transaction.atomic
def sla_reprioritize(*, ticket: Ticket, now: datetime) -> None:
    """The ticket's priority (or team, hence calendar) changed: each target that is
    still going takes its target, counting mode, calendar and warning share from the
    new priority's policy, keeps the time counted so far, and is due again from now.
    A stopped target keeps its verdict; ``warned_at``/``breached_at`` stay, so an
    escalation's own raise never re-warns or re-breaches the target that caused it.
    A target the new policy lacks keeps its old terms; a target it adds starts now."""
    _locked_targets(ticket)
    targets_retime(tickets=[ticket], now=now)

"""The escalation sweep: every minute, the SLA targets that reached their warning share
or their target are marked, recorded as ``Escalation`` rows, and — for a breach — the
ticket's priority goes up one step and its team lead gets an email.

Exactly once per ticket, target and level, however often or concurrently it runs:

1. one query finds the due warnings and one the due breaches (set-based, on the
   partial indexes of ``warn_at``/``due_at``);
2. the tickets are locked in id order (the clock's services lock ticket, then targets,
   too: the two queue rather than deadlock);
3. a guarded ``UPDATE … SET warned_at = now WHERE … AND warned_at IS NULL … RETURNING``
   marks them: a run that found the same rows a moment later gets none of them back,
   because on PostgreSQL the UPDATE re-checks its WHERE on the row another run has just
   committed. The ``Escalation`` unique constraint (ticket, target, level) is the second
   lock on the door;
4. the marked rows are followed up set-based too: the raised priorities in one
   ``UPDATE … FROM (VALUES …)``, the targets re-timed to the new policies in another
   (``targets_retime``, the many-ticket form of ``sla_reprioritize``), the history and
   escalation rows in bulk inserts, one email per lead on commit. A backlog after an
   outage (thousands due at once) costs a handful of statements, not a loop of them.

A warning is recorded (the dashboard and the queue show it) but mails nobody: the
lead's email is for breaches, one per lead and sweep, listing every ticket of theirs
that breached in it.
"""

import logging
from collections import defaultdict
from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core.sql import sql_datetime

from ..models import PRIORITY_ORDER, Escalation, Priority, SlaTarget, Team, Ticket, TicketEvent
from .clock import rows_update, targets_retime

logger = logging.getLogger(__name__)

#: ids per guarded UPDATE (well under SQLite's and PostgreSQL's bound-parameter limits)
CHUNK = 1000
ACTOR_LABEL = "SLA"


def _due(*, field: str, mark: str, now: datetime) -> list[tuple[int, int]]:
    """(target id, ticket id) of running targets whose ``field`` has passed, unmarked."""
    return list(
        SlaTarget.objects.filter(
            state=SlaTarget.State.RUNNING, **{f"{field}__lte": now, f"{mark}__isnull": True}
        ).values_list("id", "ticket_id")
    )


def _mark(*, ids: list[int], field: str, mark: str, now: datetime) -> list[tuple[int, int, str]]:
    """Sets ``mark`` on those of ``ids`` still unmarked and due; returns the rows this
    call marked: (target id, ticket id, kind). Plain SQL: Django's ``update()`` cannot
    say RETURNING (SQLite has it since 3.35, PostgreSQL always)."""
    table = SlaTarget._meta.db_table
    stamp = sql_datetime(now)
    marked: list[tuple[int, int, str]] = []
    with connection.cursor() as cursor:
        for i in range(0, len(ids), CHUNK):
            chunk = ids[i : i + CHUNK]
            placeholders = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                # the names come from the model; every value is bound
                f"UPDATE {table} SET {mark} = %s "
                f"WHERE id IN ({placeholders}) AND {mark} IS NULL AND state = %s AND {field} <= %s "
                "RETURNING id, ticket_id, kind",
                [stamp, *chunk, SlaTarget.State.RUNNING.value, stamp],
            )
            marked += [(int(a), int(b), str(c)) for a, b, c in cursor.fetchall()]
    return marked


def _raise(ticket: Ticket, kinds: list[str], now: datetime) -> list[tuple[str, str, str]]:
    """One step per breached target, never past crisis, on the ticket object (written by
    the caller, set-based); returns (kind, from, to) for each breach."""
    steps = []
    history = list((ticket.priority_basis or {}).get("escalations", []))
    for kind in sorted(kinds):
        old = ticket.priority
        index = PRIORITY_ORDER.index(old) if old in PRIORITY_ORDER else 0
        new = str(PRIORITY_ORDER[min(index + 1, len(PRIORITY_ORDER) - 1)])
        steps.append((kind, old, new))
        if new != old:
            history.append({"target": kind, "from": old, "to": new, "at": now.isoformat()})
            ticket.priority = new
    if any(old != new for _kind, old, new in steps):
        ticket.priority_basis = {**(ticket.priority_basis or {}), "escalations": history}
        ticket.updated_at = now
    return steps


def _record_warnings(*, ids: list[int], now: datetime) -> None:
    """The warnings' ``Escalation`` rows, straight from the marked targets: one
    ``INSERT … SELECT`` per chunk (thousands fall due after an outage). A warning changes
    nothing on the ticket, so it writes no history entry; the escalation row is its record."""
    esc, target, ticket = Escalation._meta.db_table, SlaTarget._meta.db_table, Ticket._meta.db_table
    with connection.cursor() as cursor:
        for i in range(0, len(ids), CHUNK):
            chunk = ids[i : i + CHUNK]
            cursor.execute(
                f"INSERT INTO {esc} (ticket_id, target, level, at, priority_from, priority_to, team_id) "
                f"SELECT s.ticket_id, s.kind, %s, %s, '', '', t.team_id FROM {target} s "
                f"JOIN {ticket} t ON t.id = s.ticket_id WHERE s.id IN ({', '.join(['%s'] * len(chunk))}) "
                "ON CONFLICT (ticket_id, target, level) DO NOTHING",
                [Escalation.Level.WARNING.value, sql_datetime(now), *chunk],
            )


def _record_breaches(*, marked: list[tuple[int, int, str]], now: datetime) -> tuple[int, list[dict]]:
    """Raises each breached ticket's priority and re-times its targets to the new policy,
    in a fixed number of statements however many breached; returns how many steps were
    raised and what to mail."""
    by_ticket: dict[int, list[str]] = defaultdict(list)
    for _id, ticket_id, kind in marked:
        by_ticket[ticket_id].append(kind)
    raised, notices, rows, events = [], [], [], []
    for ticket in Ticket.objects.filter(pk__in=by_ticket).order_by("pk"):
        steps = _raise(ticket, by_ticket[ticket.pk], now)
        if any(old != new for _kind, old, new in steps):
            raised.append(ticket)
        for kind, old, new in steps:
            rows.append(
                Escalation(
                    ticket=ticket,
                    target=kind,
                    level=Escalation.Level.BREACH,
                    at=now,
                    priority_from=old,
                    priority_to=new,
                    team_id=ticket.team_id,
                )
            )
            if old != new:
                events.append(
                    TicketEvent(
                        ticket=ticket,
                        at=now,
                        actor_label=ACTOR_LABEL,
                        action="sla_escalated",
                        changes={"priority": [old, new], "target": kind},
                    )
                )
            notices.append(
                {"ticket_id": ticket.pk, "subject": ticket.subject, "team_id": ticket.team_id, "target": kind,
                 "from": old, "to": new}
            )  # fmt: skip
    rows_update(Ticket, raised, ["priority", "priority_basis", "updated_at"])
    targets_retime(tickets=raised, now=now)
    Escalation.objects.bulk_create(rows, ignore_conflicts=True)
    TicketEvent.objects.bulk_create(events)
    return len(events), notices


def _lead_emails(notices: list[dict]) -> list[tuple[str, list[dict]]]:
    """(lead's address, their notices) for teams that have a lead with an address."""
    leads = {
        team.pk: team.lead.email
        for team in Team.objects.filter(pk__in={n["team_id"] for n in notices if n["team_id"]}).select_related("lead")
        if team.lead is not None and team.lead.email
    }
    grouped: dict[str, list[dict]] = defaultdict(list)
    for notice in notices:
        address = leads.get(notice["team_id"])
        if address:
            grouped[address].append(notice)
    return sorted(grouped.items())


def _send_breach_emails(batches: list[tuple[str, list[dict]]]) -> None:
    """After commit: one email per lead. A failing mail server costs that lead's email,
    not the others' (the escalations are recorded either way)."""
    labels = dict(SlaTarget.Kind.choices)
    with translation.override(settings.LANGUAGE_CODE):
        priorities = dict(Priority.choices)
        for address, notices in batches:
            count = len({n["ticket_id"] for n in notices})
            subject = ngettext(
                "[Ops Desk] %(count)d ticket breached its SLA",
                "[Ops Desk] %(count)d tickets breached their SLA",
                count,
            ) % {"count": count}
            lines = [_("These tickets of your team passed an SLA target and were escalated:"), ""]
            for n in notices:
                lines.append(
                    _("#%(id)s %(subject)s — %(target)s target breached; priority %(from)s → %(to)s")
                    % {
                        "id": n["ticket_id"],
                        "subject": n["subject"],
                        "target": labels.get(n["target"], n["target"]),
                        "from": priorities.get(n["from"], n["from"]),
                        "to": priorities.get(n["to"], n["to"]),
                    }
                )
            try:
                send_mail(subject, "\n".join(lines), None, [address])
            except Exception:
                logger.exception("SLA breach email failed", extra={"to": address})


def sla_escalation_sweep(*, now: datetime | None = None) -> dict:
    """Marks and escalates every due warning and breach (see the module docstring).
    Returns counts: ``warnings``, ``breaches``, ``priority_raised``, ``emails``."""
    now = now or timezone.now()
    with transaction.atomic():
        due_warnings = _due(field="warn_at", mark="warned_at", now=now)
        due_breaches = _due(field="due_at", mark="breached_at", now=now)
        ticket_ids = sorted({t for _id, t in due_warnings} | {t for _id, t in due_breaches})
        if not ticket_ids:
            return {"warnings": 0, "breaches": 0, "priority_raised": 0, "emails": 0}
        list(Ticket.objects.select_for_update().filter(pk__in=ticket_ids).order_by("pk").values_list("pk", flat=True))
        warned = _mark(ids=[i for i, _t in due_warnings], field="warn_at", mark="warned_at", now=now)
        breached = _mark(ids=[i for i, _t in due_breaches], field="due_at", mark="breached_at", now=now)
        _record_warnings(ids=[i for i, _t, _k in warned], now=now)
        raised, notices = _record_breaches(marked=breached, now=now)
        batches = _lead_emails(notices)
        if batches:
            transaction.on_commit(lambda: _send_breach_emails(batches))
    return {"warnings": len(warned), "breaches": len(breached), "priority_raised": raised, "emails": len(batches)}

"""The escalation sweep: each warning and breach once per ticket and target, however
often (and, on PostgreSQL, however concurrently) it runs; a breach raises the priority
one step and mails the team lead.

Policies and calendar are the defaults (see test_clock). Times are Shanghai wall times."""

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from core.models import JobRun
from feedback.defaults import defaults_install
from feedback.models import Escalation, SlaTarget, Ticket, TicketEvent
from feedback.selectors.sla import escalations_recent, sla_state
from feedback.services.clock import sla_on_status, sla_targets_start
from feedback.services.escalation import sla_escalation_sweep
from feedback.tasks import sla_escalation_sweep_task

from .factories import TeamFactory, TicketFactory, UserFactory

SH = ZoneInfo("Asia/Shanghai")
H = 3600


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SH)


def open_ticket(at: datetime, priority: str = "normal", **kwargs) -> Ticket:
    ticket = TicketFactory(priority=priority, created_at=at, **kwargs)
    sla_targets_start(ticket=ticket, now=at)
    return ticket


def target(ticket, kind) -> SlaTarget:
    return SlaTarget.objects.get(ticket=ticket, kind=kind)


def escalations(ticket, level=None):
    rows = Escalation.objects.filter(ticket=ticket)
    return rows.filter(level=level) if level else rows


@pytest.fixture
def tech(db):
    return TeamFactory(code="tech", lead=UserFactory(username="tech-lead", email="lead@ops.example.com"))


# Normal ticket opened Mon 2026-03-09 09:00 (8 h / 40 h of business hours, 09–12 and 13–18):
#   first response warns at 6 h 24 min → Mon 16:24 (09–12 3 h, then 13:00 + 3 h 24 min), due at 8 h → Mon 18:00.
OPENED = sh(2026, 3, 9, 9, 0)
FR_WARN, FR_DUE = sh(2026, 3, 9, 16, 24), sh(2026, 3, 9, 18, 0)


@pytest.mark.django_db
def test_the_warning_fires_at_80_percent_once(tech):
    ticket = open_ticket(OPENED, team=tech)
    assert sla_escalation_sweep(now=FR_WARN - timedelta(seconds=1))["warnings"] == 0
    assert sla_escalation_sweep(now=FR_WARN)["warnings"] == 1
    assert sla_escalation_sweep(now=FR_WARN + timedelta(minutes=5))["warnings"] == 0
    (row,) = escalations(ticket)
    assert (row.level, row.target, row.at, row.team_id) == ("warning", "first_response", FR_WARN, tech.pk)
    assert target(ticket, "first_response").warned_at == FR_WARN
    assert not TicketEvent.objects.filter(ticket=ticket, action__startswith="sla_").exists()  # changes nothing
    ticket.refresh_from_db()
    assert ticket.priority == "normal"  # a warning raises nothing
    assert sla_state(ticket=ticket, now=FR_WARN)[0]["warned"] is True


@pytest.mark.django_db
def test_a_breach_raises_the_priority_once_and_the_raise_does_not_re_breach(tech):
    ticket = open_ticket(OPENED, team=tech)
    before_due = sla_escalation_sweep(now=FR_DUE - timedelta(seconds=1))
    assert (before_due["warnings"], before_due["breaches"]) == (1, 0)

    counts = sla_escalation_sweep(now=FR_DUE)
    assert (counts["breaches"], counts["priority_raised"]) == (1, 1)
    ticket.refresh_from_db()
    assert ticket.priority == "high"
    assert ticket.priority_basis["escalations"] == [
        {"target": "first_response", "from": "normal", "to": "high", "at": FR_DUE.isoformat()}
    ]
    (breach,) = escalations(ticket, "breach")
    assert (breach.target, breach.priority_from, breach.priority_to) == ("first_response", "normal", "high")
    assert TicketEvent.objects.get(ticket=ticket, action="sla_escalated").changes == {
        "priority": ["normal", "high"],
        "target": "first_response",
    }

    # The raise re-timed the targets to high (4 h / 24 h). First response: 8 h counted > 4 h, due at
    # once — but breached already, so it stays breached and is not escalated again.
    fr = target(ticket, "first_response")
    assert (fr.target_seconds, fr.breached_at, fr.due_at) == (4 * H, FR_DUE, FR_DUE)
    # Resolution: 8 h counted, 16 h left from Mon 18:00: Tue 8, Wed 8 → Wed 2026-03-11 18:00;
    # warning at 19 h 12 min, 11 h 12 min from now: Tue 8 → Wed 09–12 (3 h), 13:00 + 12 min → Wed 13:12
    res = target(ticket, "resolution")
    assert (res.target_seconds, res.due_at, res.warn_at) == (24 * H, sh(2026, 3, 11, 18, 0), sh(2026, 3, 11, 13, 12))

    for later in (FR_DUE, FR_DUE + timedelta(minutes=1), sh(2026, 3, 10, 12, 0)):
        assert sla_escalation_sweep(now=later) == {"warnings": 0, "breaches": 0, "priority_raised": 0, "emails": 0}
    ticket.refresh_from_db()
    assert ticket.priority == "high"
    assert escalations(ticket).count() == 2

    # The resolution target breaches on its own, once: high → urgent (72 h around the clock, 24 h counted,
    # 48 h left → Fri 2026-03-13 18:00).
    assert sla_escalation_sweep(now=sh(2026, 3, 11, 13, 12))["warnings"] == 1
    assert sla_escalation_sweep(now=sh(2026, 3, 11, 18, 0))["breaches"] == 1
    assert sla_escalation_sweep(now=sh(2026, 3, 11, 18, 1))["breaches"] == 0
    ticket.refresh_from_db()
    assert ticket.priority == "urgent"
    res = target(ticket, "resolution")
    assert (res.business_hours, res.consumed_seconds, res.due_at) == (False, 24 * H, sh(2026, 3, 13, 18, 0))
    assert escalations(ticket, "breach").count() == 2


@pytest.mark.django_db
def test_crisis_is_as_high_as_it_goes(tech):
    # Crisis, opened Mon 09:00: first response due 10:00 around the clock.
    ticket = open_ticket(OPENED, "crisis", team=tech)
    counts = sla_escalation_sweep(now=sh(2026, 3, 9, 10, 0))
    assert (counts["breaches"], counts["priority_raised"]) == (1, 0)
    ticket.refresh_from_db()
    assert ticket.priority == "crisis" and "escalations" not in ticket.priority_basis
    (breach,) = escalations(ticket, "breach")
    assert (breach.priority_from, breach.priority_to) == ("crisis", "crisis")


@pytest.mark.django_db
def test_paused_and_stopped_targets_are_not_escalated(tech):
    waiting = open_ticket(OPENED, team=tech)
    sla_on_status(ticket=waiting, old="new", new="waiting_on_customer", now=sh(2026, 3, 9, 10, 0))
    resolved = open_ticket(OPENED, team=tech)
    sla_on_status(ticket=resolved, old="new", new="resolved", now=sh(2026, 3, 9, 10, 0))
    assert sla_escalation_sweep(now=sh(2026, 3, 20, 9, 0)) == {
        "warnings": 0,
        "breaches": 0,
        "priority_raised": 0,
        "emails": 0,
    }


@pytest.mark.django_db
def test_a_late_ticket_reopened_is_escalated_once(tech):
    # High (4 h / 24 h), opened Mon 09:00, resolved Thu 2026-03-12 10:00 (never swept): 3 × 8 + 1 = 25 h
    # counted → breached, no escalation. Reopened Fri 09:00: over its target, so due at once.
    ticket = open_ticket(OPENED, "high", team=tech)
    sla_on_status(ticket=ticket, old="in_progress", new="resolved", now=sh(2026, 3, 12, 10, 0))
    assert target(ticket, "resolution").state == "breached"
    sla_on_status(ticket=ticket, old="resolved", new="in_progress", now=sh(2026, 3, 13, 9, 0))
    assert target(ticket, "resolution").due_at == sh(2026, 3, 13, 9, 0)
    assert sla_escalation_sweep(now=sh(2026, 3, 13, 9, 1))["breaches"] == 1
    assert sla_escalation_sweep(now=sh(2026, 3, 13, 9, 2))["breaches"] == 0
    ticket.refresh_from_db()
    assert ticket.priority == "urgent"


@pytest.mark.django_db
def test_the_team_lead_gets_one_email_for_their_breached_tickets(tech, django_capture_on_commit_callbacks):
    product = TeamFactory(code="product", lead=UserFactory(username="product-lead", email="p@ops.example.com"))
    operations = TeamFactory(code="operations", lead=None)
    mine = [open_ticket(OPENED, team=tech, subject=f"tech {i}") for i in range(2)]
    theirs = open_ticket(OPENED, team=product, subject="product one")
    open_ticket(OPENED, team=operations)  # no lead: no email
    open_ticket(OPENED, team=None)  # no team: no email

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        counts = sla_escalation_sweep(now=FR_DUE)
    assert (counts["breaches"], counts["emails"], len(callbacks)) == (5, 2, 1)
    assert len(mail.outbox) == 2
    by_address = {m.to[0]: m for m in mail.outbox}
    assert set(by_address) == {"lead@ops.example.com", "p@ops.example.com"}
    tech_mail = by_address["lead@ops.example.com"]
    assert all(f"#{t.pk} {t.subject}" in tech_mail.body for t in mine)
    assert f"#{theirs.pk}" not in tech_mail.body
    assert "2" in tech_mail.subject
    assert f"#{theirs.pk} product one" in by_address["p@ops.example.com"].body

    # the next sweep sends nothing more
    with django_capture_on_commit_callbacks(execute=True):
        sla_escalation_sweep(now=FR_DUE + timedelta(minutes=1))
    assert len(mail.outbox) == 2


@pytest.mark.django_db
def test_no_email_before_commit(tech, django_capture_on_commit_callbacks):
    open_ticket(OPENED, team=tech)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        sla_escalation_sweep(now=FR_DUE)
    assert len(callbacks) == 1 and mail.outbox == []


@pytest.mark.django_db
def test_recent_escalations_for_the_dashboard(tech):
    product = TeamFactory(code="product")
    a = open_ticket(OPENED, team=tech)
    b = open_ticket(OPENED, team=product)
    sla_escalation_sweep(now=FR_WARN)
    sla_escalation_sweep(now=FR_DUE)
    rows = list(escalations_recent(since=FR_WARN))
    assert len(rows) == 4
    assert [(r.level, r.at) for r in rows[:2]] == [("breach", FR_DUE)] * 2  # newest first
    assert {r.ticket_id for r in escalations_recent(since=FR_WARN, team=tech)} == {a.pk}
    assert [r.level for r in escalations_recent(since=FR_DUE, team=product)] == ["breach"]
    assert b.pk in {r.ticket_id for r in rows}


@pytest.mark.django_db
def test_the_beat_task_records_its_run(tech):
    ticket = open_ticket(timezone.now() - timedelta(days=30), "crisis", team=tech)
    sla_escalation_sweep_task()
    run = JobRun.objects.filter(job="feedback.sla_escalation_sweep").latest("id")
    assert run.status == "succeeded"
    assert (run.counts["warnings"], run.counts["breaches"]) == (2, 2)
    assert escalations(ticket).count() == 4


# --- concurrently, on PostgreSQL ----------------------------------------------------


def _race(calls):
    """Each zero-argument callable in its own thread and connection, released together."""
    barrier = threading.Barrier(len(calls), timeout=60)
    results = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait()
            results[i] = ("ok", call())
        except Exception as exc:  # fails the test below
            results[i] = ("error", repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert all(r[0] == "ok" for r in results), results
    return [r[1] for r in results]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_sweeps_at_once_escalate_each_target_once():
    defaults_install()
    tech = TeamFactory(code="tech", lead=UserFactory(username="race-lead", email="race@ops.example.com"))
    tickets = [open_ticket(OPENED, team=tech) for _i in range(30)]

    # Same instant, then a second round a minute apart: both rounds find the same rows before
    # either marks them (the barrier), and only one run may take each.
    first = _race([lambda: sla_escalation_sweep(now=FR_DUE)] * 2)
    second = _race(
        [lambda: sla_escalation_sweep(now=FR_DUE + timedelta(minutes=1)), lambda: sla_escalation_sweep(now=FR_DUE)]
    )

    results = first + second
    assert sum(r["warnings"] for r in results) == 30
    assert sum(r["breaches"] for r in results) == 30
    assert sum(r["priority_raised"] for r in results) == 30
    assert sum(r["emails"] for r in results) == 1
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["race@ops.example.com"]
    for ticket in tickets:
        ticket.refresh_from_db()
        assert ticket.priority == "high"
        assert len(ticket.priority_basis["escalations"]) == 1
        assert sorted(escalations(ticket).values_list("level", flat=True)) == ["breach", "warning"]
    assert TicketEvent.objects.filter(action="sla_escalated").count() == 30


@pytest.mark.django_db
def test_the_sweep_is_set_based_its_statements_do_not_grow_with_the_backlog(tech):
    from django.db import connection as conn
    from django.test.utils import CaptureQueriesContext

    def statements(n: int, at: datetime) -> int:
        # urgent (24 h / 72 h around the clock) opened four days before: both targets overdue;
        # each ticket goes up to crisis and its targets are re-timed
        for _i in range(n):
            open_ticket(at - timedelta(days=4), "urgent", team=tech)
        with CaptureQueriesContext(conn) as queries:
            counts = sla_escalation_sweep(now=at)
        assert (counts["warnings"], counts["breaches"], counts["priority_raised"]) == (2 * n, 2 * n, n)
        return len(queries)

    assert statements(2, sh(2026, 3, 14, 10, 0)) == statements(12, sh(2026, 3, 21, 10, 0))

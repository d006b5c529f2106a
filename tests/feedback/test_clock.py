"""The SLA targets a ticket gets and how its status, first reply and priority move them,
each against a due time worked out by hand in the comment.

The policies are the defaults (feedback.defaults): normal 8 h / 40 h and high 4 h / 24 h
of business hours, urgent 24 h / 72 h and crisis 1 h / 24 h around the clock; warnings
at 80%. The calendar is the default one: Asia/Shanghai, Mon–Fri 09:00–12:00 and
13:00–18:00, China's holidays and make-up days. Times are Shanghai wall times."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import translation

from core.errors import ApplicationError
from feedback.models import BusinessCalendar, SlaPolicy, SlaTarget, Team, Ticket
from feedback.selectors.sla import sla_state, sla_states
from feedback.services.clock import (
    sla_first_response,
    sla_on_status,
    sla_reprioritize,
    sla_targets_start,
)
from feedback.services.rules import rule_save

from .factories import BusinessCalendarFactory, CalendarDateFactory, SlaPolicyFactory, TeamFactory, TicketFactory

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
H = 3600


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SH)


def open_ticket(at: datetime, priority: str = "normal", **kwargs) -> Ticket:
    """A ticket of the tech team (on a calendar like the default one) unless ``team`` is given."""
    if "team" not in kwargs:
        kwargs["team"] = TeamFactory()
    ticket = TicketFactory(priority=priority, created_at=at, **kwargs)
    sla_targets_start(ticket=ticket, now=at)
    return ticket


def targets(ticket) -> dict[str, SlaTarget]:
    return {t.kind: t for t in SlaTarget.objects.filter(ticket=ticket)}


def move(ticket, new: str, at: datetime) -> None:
    old, ticket.status = ticket.status, new
    ticket.save(update_fields=["status"])
    sla_on_status(ticket=ticket, old=old, new=new, now=at)


# --- starting -----------------------------------------------------------------------


def test_a_normal_ticket_over_a_weekend():
    # Opened Fri 2026-03-06 16:00.
    ticket = open_ticket(sh(2026, 3, 6, 16, 0))
    fr, res = targets(ticket)["first_response"], targets(ticket)["resolution"]
    # first response 8 h: Fri 16–18 (2 h); Sat, Sun off; Mon 09–12 (3 h → 5), 13–16 (3 h → 8) → Mon 2026-03-09 16:00
    assert fr.due_at == sh(2026, 3, 9, 16, 0)
    # warning at 80% = 6 h 24 min: Fri 2 h; Mon 09–12 → 5 h; 1 h 24 min after 13:00 → Mon 14:24
    assert fr.warn_at == sh(2026, 3, 9, 14, 24)
    # resolution 40 h: Fri 2 h; Mon–Thu 32 h → 34; Fri 2026-03-13 09–12, 13–16 (6 h) → Fri 16:00
    assert res.due_at == sh(2026, 3, 13, 16, 0)
    # warning at 32 h: Fri 2 h + Mon–Wed 24 h = 26; Thu 09–12, 13–16 (6 h) → Thu 2026-03-12 16:00
    assert res.warn_at == sh(2026, 3, 12, 16, 0)
    assert {t.state for t in (fr, res)} == {"running"}
    assert fr.business_hours and fr.calendar_id == ticket.team.calendar_id
    assert (fr.target_seconds, res.target_seconds) == (8 * H, 40 * H)


def test_the_spring_festival_and_its_make_up_saturday():
    # High, opened Fri 2026-02-13 16:00.
    ticket = open_ticket(sh(2026, 2, 13, 16, 0), "high")
    t = targets(ticket)
    # first response 4 h: Fri 16–18 (2 h); Sat 2026-02-14 is a make-up working day, 09–11 (2 h) → Sat 11:00
    assert t["first_response"].due_at == sh(2026, 2, 14, 11, 0)
    # resolution 24 h: Fri 2 h; Sat 14 8 h → 10; Sun 15 … Mon 23 holiday; Tue 24 8 h → 18;
    # Wed 2026-02-25 09–12, 13–16 (6 h) → Wed 16:00
    assert t["resolution"].due_at == sh(2026, 2, 25, 16, 0)


def test_national_day():
    # Normal, opened Wed 2026-09-30 14:00. First response 8 h: Wed 14–18 (4 h); Oct 1–7 holiday;
    # Thu 2026-10-08 09–12 (3 h → 7), 13–14 (1 h → 8) → Thu 14:00
    ticket = open_ticket(sh(2026, 9, 30, 14, 0))
    assert targets(ticket)["first_response"].due_at == sh(2026, 10, 8, 14, 0)


def test_admin_added_dates_on_the_team_calendar():
    calendar = BusinessCalendarFactory()
    CalendarDateFactory(calendar=calendar, date=date(2026, 3, 11), kind="holiday")
    CalendarDateFactory(calendar=calendar, date=date(2026, 3, 14), kind="workday")
    team = TeamFactory(code="product", calendar=calendar)
    # High, opened Tue 2026-03-10 16:00.
    ticket = open_ticket(sh(2026, 3, 10, 16, 0), "high", team=team)
    t = targets(ticket)
    # first response 4 h: Tue 16–18 (2 h); Wed 11 a day off; Thu 09–11 (2 h) → Thu 2026-03-12 11:00
    assert t["first_response"].due_at == sh(2026, 3, 12, 11, 0)
    # resolution 24 h: Tue 2 h; Thu 8 → 10; Fri 8 → 18; Sat 14 a working day, 09–12, 13–16 (6 h) → Sat 16:00
    assert t["resolution"].due_at == sh(2026, 3, 14, 16, 0)


def test_crisis_runs_around_the_clock_even_at_night_in_the_spring_festival():
    # Crisis, opened 2026-02-17 03:00 (a holiday, at night).
    ticket = open_ticket(sh(2026, 2, 17, 3, 0), "crisis")
    fr, res = targets(ticket)["first_response"], targets(ticket)["resolution"]
    # first response 1 h → 04:00; warning at 48 min → 03:48
    assert (fr.due_at, fr.warn_at) == (sh(2026, 2, 17, 4, 0), sh(2026, 2, 17, 3, 48))
    # resolution 24 h → 2026-02-18 03:00; warning at 19 h 12 min → 2026-02-17 22:12
    assert (res.due_at, res.warn_at) == (sh(2026, 2, 18, 3, 0), sh(2026, 2, 17, 22, 12))
    assert not fr.business_hours and fr.calendar_id is None


def test_urgent_first_solution_within_24_hours_around_the_clock():
    # Urgent, opened Sat 2026-03-07 10:00: first response 24 h → Sun 10:00; resolution 72 h → Tue 2026-03-10 10:00
    t = targets(open_ticket(sh(2026, 3, 7, 10, 0), "urgent"))
    assert t["first_response"].due_at == sh(2026, 3, 8, 10, 0)
    assert t["resolution"].due_at == sh(2026, 3, 10, 10, 0)


def test_a_null_target_gets_no_row_and_no_policy_gets_none():
    SlaPolicyFactory(priority="low", first_response_minutes=None, resolution_minutes=600)
    assert set(targets(open_ticket(sh(2026, 3, 9, 9, 0), "low"))) == {"resolution"}
    SlaPolicy.objects.filter(priority="low").delete()
    assert targets(open_ticket(sh(2026, 3, 9, 9, 0), "low")) == {}


def test_a_team_without_a_calendar_uses_the_first_calendar():
    team = TeamFactory(code="operations", calendar=None)
    ticket = open_ticket(sh(2026, 3, 6, 16, 0), team=team)
    fr = targets(ticket)["first_response"]
    assert fr.calendar_id == BusinessCalendar.objects.order_by("pk").first().pk
    assert fr.due_at == sh(2026, 3, 9, 16, 0)  # as in the weekend test: the default calendar


def test_no_calendar_at_all_counts_around_the_clock():
    Team.objects.update(calendar=None)
    BusinessCalendar.objects.all().delete()
    ticket = open_ticket(sh(2026, 3, 6, 16, 0), team=None)
    fr = targets(ticket)["first_response"]
    # normal, 8 h of wall time → Sat 00:00
    assert (fr.business_hours, fr.due_at) == (False, sh(2026, 3, 7, 0, 0))


def test_starting_twice_makes_no_second_row():
    ticket = open_ticket(sh(2026, 3, 9, 9, 0))
    assert sla_targets_start(ticket=ticket, now=sh(2026, 3, 9, 10, 0)) == []
    assert SlaTarget.objects.filter(ticket=ticket).count() == 2


# --- pause and resume ---------------------------------------------------------------


def test_waiting_on_the_customer_pauses_both_targets():
    # Normal, opened Fri 2026-03-06 16:00; waiting from Mon 2026-03-09 10:00 to Wed 2026-03-11 15:00.
    ticket = open_ticket(sh(2026, 3, 6, 16, 0))
    move(ticket, "waiting_on_customer", sh(2026, 3, 9, 10, 0))
    paused = targets(ticket)
    # counted before the wait: Fri 16–18 (2 h) + Mon 09–10 (1 h) = 3 h
    assert {t.consumed_seconds for t in paused.values()} == {3 * H}
    assert {t.state for t in paused.values()} == {"paused"}
    assert {t.due_at for t in paused.values()} == {None}

    # a day into the wait the clock stands still and the wait is counted as paused time
    fr_state, res_state = sla_state(ticket=ticket, now=sh(2026, 3, 10, 10, 0))
    assert (fr_state["target"], fr_state["state"], fr_state["seconds_left"]) == ("first_response", "paused", 5 * H)
    assert res_state["seconds_left"] == 37 * H
    assert fr_state["paused_seconds"] == 24 * H

    move(ticket, "in_progress", sh(2026, 3, 11, 15, 0))
    t = targets(ticket)
    # first response: 5 h left from Wed 15:00: Wed 15–18 (3 h); Thu 2026-03-12 09–11 (2 h) → Thu 11:00
    assert t["first_response"].due_at == sh(2026, 3, 12, 11, 0)
    # resolution: 37 h left: Wed 3 → 34; Thu 8 → 26; Fri 8 → 18; Mon 16th 8 → 10; Tue 17th 8 → 2;
    # Wed 2026-03-18 09–11 → Wed 11:00
    assert t["resolution"].due_at == sh(2026, 3, 18, 11, 0)
    # paused Mon 10:00 → Wed 15:00 = 2 days 5 h = 53 h of wall time
    assert {x.paused_seconds for x in t.values()} == {53 * H}
    assert {x.state for x in t.values()} == {"running"}


def test_resolving_while_waiting_stops_the_paused_targets():
    # Normal, opened Mon 2026-03-09 09:00; waiting at 11:00 (2 h counted); resolved Tue 09:00 from waiting.
    ticket = open_ticket(sh(2026, 3, 9, 9, 0))
    move(ticket, "waiting_on_customer", sh(2026, 3, 9, 11, 0))
    move(ticket, "resolved", sh(2026, 3, 10, 9, 0))
    t = targets(ticket)
    assert {x.state for x in t.values()} == {"met"}
    assert {x.consumed_seconds for x in t.values()} == {2 * H}
    assert {x.paused_seconds for x in t.values()} == {22 * H}  # Mon 11:00 → Tue 09:00
    assert {x.stopped_at for x in t.values()} == {sh(2026, 3, 10, 9, 0)}


# --- first response, resolution, reopen --------------------------------------------


def test_the_first_public_reply_meets_or_breaches_the_first_response_target():
    # Normal, opened Mon 2026-03-09 09:00: first response due Mon 18:00.
    early = open_ticket(sh(2026, 3, 9, 9, 0))
    sla_first_response(ticket=early, now=sh(2026, 3, 9, 17, 59))
    fr = targets(early)["first_response"]
    # counted 09–12 (3 h) + 13–17:59 (4 h 59 min) = 7 h 59 min
    assert (fr.state, fr.consumed_seconds, fr.due_at) == ("met", 8 * H - 60, None)
    assert targets(early)["resolution"].state == "running"

    late = open_ticket(sh(2026, 3, 9, 9, 0))
    sla_first_response(ticket=late, now=sh(2026, 3, 10, 9, 30))
    fr = targets(late)["first_response"]
    assert (fr.state, fr.consumed_seconds) == ("breached", 8 * H + 30 * 60)
    # a second reply changes nothing
    sla_first_response(ticket=late, now=sh(2026, 3, 10, 11, 0))
    assert targets(late)["first_response"].consumed_seconds == 8 * H + 30 * 60


def test_a_reopened_ticket_counts_on_from_where_it_stopped():
    # High (4 h / 24 h), opened Mon 2026-03-09 09:00, resolved Mon 11:00: 2 h counted on both.
    ticket = open_ticket(sh(2026, 3, 9, 9, 0), "high")
    move(ticket, "resolved", sh(2026, 3, 9, 11, 0))
    t = targets(ticket)
    assert (t["first_response"].state, t["resolution"].state) == ("met", "met")  # the resolution answered too
    move(ticket, "closed", sh(2026, 3, 9, 12, 0))
    assert targets(ticket)["resolution"].stopped_at == sh(2026, 3, 9, 11, 0)  # closing a resolved ticket: no change

    move(ticket, "in_progress", sh(2026, 3, 10, 9, 0))  # reopened Tue 09:00
    t = targets(ticket)
    res = t["resolution"]
    # 22 h left from Tue 09:00: Tue 8 → 14; Wed 8 → 6; Thu 2026-03-12 09–12, 13–16 → Thu 16:00
    assert (res.state, res.consumed_seconds, res.stopped_at) == ("running", 2 * H, None)
    assert res.due_at == sh(2026, 3, 12, 16, 0)
    assert t["first_response"].state == "met"  # the first response does not restart

    # resolved again Thu 17:00: 2 h + Tue 8 + Wed 8 + Thu 7 = 25 h > 24 h → breached
    move(ticket, "resolved", sh(2026, 3, 12, 17, 0))
    res = targets(ticket)["resolution"]
    assert (res.state, res.consumed_seconds) == ("breached", 25 * H)


# --- priority changes ---------------------------------------------------------------


def test_a_new_priority_keeps_the_time_counted_so_far():
    # Normal, opened Mon 2026-03-09 09:00; raised to high at Mon 11:00 (2 h counted).
    ticket = open_ticket(sh(2026, 3, 9, 9, 0))
    ticket.priority = "high"
    ticket.save(update_fields=["priority"])
    sla_reprioritize(ticket=ticket, now=sh(2026, 3, 9, 11, 0))
    t = targets(ticket)
    fr, res = t["first_response"], t["resolution"]
    assert (fr.target_seconds, fr.consumed_seconds) == (4 * H, 2 * H)
    # first response: 2 h left: 11–12, 13–14 → Mon 14:00
    assert fr.due_at == sh(2026, 3, 9, 14, 0)
    # resolution: 22 h left: Mon 11–12, 13–18 (6 h) → 16; Tue 8 → 8; Wed 8 → 0 → Wed 2026-03-11 18:00
    assert res.due_at == sh(2026, 3, 11, 18, 0)


def test_a_crisis_counts_around_the_clock_and_back():
    # Normal, opened Mon 2026-03-09 09:00; crisis at 10:00 (1 h counted).
    ticket = open_ticket(sh(2026, 3, 9, 9, 0))
    ticket.priority = "crisis"
    ticket.save(update_fields=["priority"])
    sla_reprioritize(ticket=ticket, now=sh(2026, 3, 9, 10, 0))
    t = targets(ticket)
    # first response: 1 h target, 1 h counted → due at once; resolution: 23 h of wall time → Tue 09:00
    assert t["first_response"].due_at == sh(2026, 3, 9, 10, 0)
    assert (t["resolution"].business_hours, t["resolution"].due_at) == (False, sh(2026, 3, 10, 9, 0))

    # back to normal at 10:30: resolution counted 1 h + 30 min around the clock = 1 h 30 min;
    # 38 h 30 min of business hours left: Mon 10:30–12 (1.5) → 37; 13–18 (5) → 32; Tue–Fri 32 → Fri 2026-03-13 18:00
    ticket.priority = "normal"
    ticket.save(update_fields=["priority"])
    sla_reprioritize(ticket=ticket, now=sh(2026, 3, 9, 10, 30))
    res = targets(ticket)["resolution"]
    assert (res.business_hours, res.consumed_seconds) == (True, 90 * 60)
    assert res.due_at == sh(2026, 3, 13, 18, 0)


def test_a_new_priority_never_clears_a_breach():
    ticket = open_ticket(sh(2026, 3, 9, 9, 0))
    breached = sh(2026, 3, 9, 18, 0)
    SlaTarget.objects.filter(ticket=ticket, kind="first_response").update(breached_at=breached, warned_at=breached)
    ticket.priority = "urgent"  # 24 h around the clock: more room than the 8 h already counted
    ticket.save(update_fields=["priority"])
    sla_reprioritize(ticket=ticket, now=sh(2026, 3, 9, 18, 30))
    fr = targets(ticket)["first_response"]
    assert (fr.breached_at, fr.warned_at) == (breached, breached)
    sla_first_response(ticket=ticket, now=sh(2026, 3, 9, 19, 0))
    assert targets(ticket)["first_response"].state == "breached"  # breached stays breached


def test_a_stopped_target_keeps_its_terms_and_verdict():
    ticket = open_ticket(sh(2026, 3, 9, 9, 0))
    sla_first_response(ticket=ticket, now=sh(2026, 3, 9, 10, 0))
    ticket.priority = "crisis"
    ticket.save(update_fields=["priority"])
    sla_reprioritize(ticket=ticket, now=sh(2026, 3, 9, 11, 0))
    fr = targets(ticket)["first_response"]
    assert (fr.state, fr.target_seconds, fr.business_hours) == ("met", 8 * H, True)


def test_a_priority_that_adds_a_target_starts_it_then():
    SlaPolicyFactory(priority="low", first_response_minutes=None, resolution_minutes=80 * 60)
    ticket = open_ticket(sh(2026, 3, 9, 9, 0), "low")
    ticket.priority = "normal"
    ticket.save(update_fields=["priority"])
    sla_reprioritize(ticket=ticket, now=sh(2026, 3, 9, 10, 0))
    fr = targets(ticket)["first_response"]
    # 8 h from Mon 10:00: 10–12 (2), 13–18 (5) → 7; Tue 09–10 → Tue 2026-03-10 10:00
    assert (fr.started_at, fr.due_at) == (sh(2026, 3, 9, 10, 0), sh(2026, 3, 10, 10, 0))


# --- what the API and pages show ----------------------------------------------------


def test_both_targets_are_shown_together_with_time_left_going_negative():
    # Normal, opened Mon 2026-03-09 09:00; seen Tue 10:00: 9 h counted.
    ticket = open_ticket(sh(2026, 3, 9, 9, 0))
    fr, res = sla_state(ticket=ticket, now=sh(2026, 3, 10, 10, 0))
    assert (fr["target"], res["target"]) == ("first_response", "resolution")
    assert (fr["state"], fr["seconds_left"], fr["breached"]) == ("running", -H, True)
    assert (res["seconds_left"], res["breached"], res["warned"]) == (31 * H, False, False)
    assert fr["due_at"] == sh(2026, 3, 9, 18, 0)
    assert fr["paused_seconds"] == 0
    detailed = sla_state(ticket=ticket, now=sh(2026, 3, 10, 10, 0), detail=True)[0]
    assert (detailed["counted_seconds"], detailed["started_at"]) == (9 * H, sh(2026, 3, 9, 9, 0))
    other = open_ticket(sh(2026, 3, 9, 9, 0))
    many = sla_states(ticket_ids=[ticket.pk, other.pk, 0], now=sh(2026, 3, 10, 10, 0))
    assert many[ticket.pk] == [fr, res] and len(many[other.pk]) == 2 and many[0] == []


def test_the_state_of_many_tickets_takes_a_fixed_number_of_queries(django_assert_num_queries):
    tickets = [open_ticket(sh(2026, 3, 9, 9, 0)) for _i in range(5)]
    with django_assert_num_queries(3):  # targets, calendars, their dates
        sla_states(ticket_ids=[t.pk for t in tickets], now=sh(2026, 3, 10, 10, 0))


# --- bad calendars ------------------------------------------------------------------


def test_a_calendar_with_no_working_time_refuses_the_ticket_and_writes_nothing():
    empty = BusinessCalendar.objects.create(name="empty", weekly_hours={})  # past the admin's check
    team = TeamFactory(code="product", calendar=empty)
    with pytest.raises(ApplicationError) as caught, transaction.atomic():
        ticket = TicketFactory(team=team, subject="no hours")
        sla_targets_start(ticket=ticket, now=sh(2026, 3, 9, 9, 0))
    assert caught.value.code == "calendar_no_working_time"
    assert not Ticket.objects.filter(subject="no hours").exists()
    assert not SlaTarget.objects.exists()


def test_the_calendar_service_refuses_bad_hours_and_writes_nothing():
    before = BusinessCalendar.objects.count()
    with pytest.raises(ApplicationError) as caught:
        rule_save(obj=BusinessCalendar(name="nothing", weekly_hours={}), actor=None)
    assert caught.value.code == "calendar_no_working_time"
    with pytest.raises(ApplicationError) as caught:
        rule_save(
            obj=BusinessCalendar(name="bad", weekly_hours={"1": [["09:00", "12:00"], ["11:00", "13:00"]]}), actor=None
        )
    assert caught.value.code == "calendar_hours_invalid"
    assert len(caught.value.details["errors"]) == 1
    assert BusinessCalendar.objects.count() == before

    calendar = BusinessCalendar(name="weekends", weekly_hours={"6": [["10:00", "16:00"]]}, china_holidays=False)
    saved = rule_save(obj=calendar, actor=None)
    assert BusinessCalendar.objects.get(pk=saved.pk).weekly_hours == {"6": [["10:00", "16:00"]]}


def test_the_admin_form_check_refuses_a_calendar_without_working_time():
    calendar = BusinessCalendar(name="empty", weekly_hours={"1": []})
    with translation.override("en"), pytest.raises(ValidationError) as caught:
        calendar.full_clean()
    assert "no working time" in str(caught.value.message_dict["weekly_hours"])

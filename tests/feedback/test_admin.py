"""The feedback admin: every page opens for an admin, the rules are the admins' (403 for
an operator even with admin-site access), every rule edit goes through
``feedback.services.rules`` and is audited from → to, every refused edit is a form
error with the service's message and writes nothing, and a ticket's edit goes through
``ticket_update`` / ``ticket_assign`` (their refusals on the form too); tickets are
never added by hand or deleted."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django import forms
from django.contrib import admin
from django.test import Client

from core.errors import ApplicationError
from core.models import AuditEntry
from feedback.models import (
    BusinessCalendar,
    CalendarDate,
    CannedReply,
    CsatResponse,
    Escalation,
    NpsResponse,
    NpsSurvey,
    PriorityRule,
    RoadmapItem,
    SlaPolicy,
    Team,
    Theme,
    Ticket,
    TicketEvent,
    VipRule,
)
from feedback.services import rules
from feedback.services import tickets as services
from tests.users.factories import CustomerFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
RULES = [BusinessCalendar, Team, SlaPolicy, PriorityRule, VipRule, CannedReply]


def _url(model, action: str = "changelist", *args) -> str:
    from django.urls import reverse

    return reverse(f"admin:feedback_{model._meta.model_name}_{action}", args=args)


@pytest.fixture
def admin_user(make_user):
    return make_user("admin", username="boss")


@pytest.fixture
def admin_client(admin_user):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(admin_user)
    return client


@pytest.fixture
def operator(make_user):
    user = make_user("operator", username="op1")
    Team.objects.get(code="operations").members.add(user)
    return user


def _staff_client(user) -> Client:
    user.is_staff = True  # admin-site access; the role still decides what it may do there
    user.save(update_fields=["is_staff"])
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def _ticket(**kw) -> Ticket:
    args = {"customer": None, "category": "question", "subject": "Cannot log in", "body": "error 500", "now": NOW}
    return services.ticket_open(**{**args, **kw}).ticket


def _one_of_everything(operator) -> Ticket:
    customer = CustomerFactory(external_id="c-1")
    ticket = _ticket(customer=customer, attachments=[services.AttachmentIn("shot.png", "image/png", PNG)])
    services.ticket_assign(ticket=ticket, team=ticket.team, assignee=operator, actor=operator, now=NOW)
    services.ticket_reply(ticket=ticket, body="On it", actor=operator, now=NOW)
    services.ticket_note(ticket=ticket, body="internal", actor=operator, now=NOW)
    services.ticket_transition(ticket=ticket, action="resolve", actor=operator, now=NOW)
    Escalation.objects.create(ticket=ticket, target="first_response", level="warning", at=NOW, team=ticket.team)
    CsatResponse.objects.create(ticket=ticket, score=5, team=ticket.team, answered_at=NOW)
    survey = NpsSurvey.objects.create(name="Q1", segment_slug="tier-core")
    NpsResponse.objects.create(survey=survey, customer=customer, score=9)
    theme = Theme.objects.create(name="登录问题")
    RoadmapItem.objects.create(theme=theme, title="Fix login")
    CalendarDate.objects.create(
        calendar=BusinessCalendar.objects.get(), date=datetime(2026, 5, 1).date(), kind="holiday"
    )
    CannedReply.objects.create(name="Hello", body="Hi {{ customer_name }}")
    return ticket


def _feedback_admins():
    return [(m, a) for m, a in admin.site._registry.items() if m._meta.app_label == "feedback"]


def test_every_feedback_model_has_an_admin_and_each_page_opens(admin_client, operator):
    from django.apps import apps

    _one_of_everything(operator)
    registered = {m for m, _a in _feedback_admins()}
    # A calendar's dates are edited on the calendar's page (an inline).
    assert registered == set(apps.get_app_config("feedback").get_models()) - {CalendarDate}
    for model, _model_admin in _feedback_admins():
        assert admin_client.get(_url(model)).status_code == 200, model.__name__
        obj = model.objects.order_by("pk").first()
        assert obj is not None, model.__name__
        r = admin_client.get(_url(model, "change", obj.pk))
        assert r.status_code == 200, model.__name__
    for model in RULES:
        assert admin_client.get(_url(model, "add")).status_code == 200, model.__name__


def test_a_ticket_list_runs_the_same_queries_for_n_and_3n_tickets(
    admin_client, operator, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get(_url(Ticket)).status_code == 200
        return len(ctx.captured_queries)

    for _ in range(2):
        services.ticket_assign(ticket=_ticket(customer=CustomerFactory()), team=None, assignee=operator, actor=None)
    count()
    first = count()
    for _ in range(4):
        services.ticket_assign(ticket=_ticket(customer=CustomerFactory()), team=None, assignee=operator, actor=None)
    assert count() == first


def test_an_operator_gets_403_on_the_rules_even_with_admin_site_access(operator):
    client = _staff_client(operator)
    calendar = BusinessCalendar.objects.get()
    for model in RULES:
        obj = model.objects.order_by("pk").first() or calendar
        assert client.get(_url(model)).status_code == 403, model.__name__
        if isinstance(obj, model):
            assert client.get(_url(model, "change", obj.pk)).status_code == 403, model.__name__
        assert client.get(_url(model, "add")).status_code == 403, model.__name__
    policy = SlaPolicy.objects.get(priority="normal")
    assert client.post(_url(SlaPolicy, "change", policy.pk), {"warn_share": "0.5"}).status_code == 403
    assert SlaPolicy.objects.get(pk=policy.pk).warn_share == Decimal("0.80")
    # The queue's records are readable (read-only) for the role, and the rules are not listed.
    assert client.get(_url(Ticket)).status_code == 200
    index = client.get("/admin/").content.decode()
    assert _url(Ticket) in index and _url(SlaPolicy) not in index


def test_without_admin_site_access_an_operator_is_sent_to_the_login(operator):
    client = Client()
    client.force_login(operator)
    r = client.get(_url(SlaPolicy))
    assert r.status_code == 302 and "/login/" in r["Location"]


# --- posting the admin's own forms -------------------------------------------------------


def _add_fields(data: dict, form) -> None:
    for name, field in form.fields.items():
        value = form[name].value()
        key = form.add_prefix(name)
        if isinstance(field, forms.BooleanField):
            if value:
                data[key] = "on"
        elif value is not None:
            data[key] = value


def _form_data(client: Client, url: str, **changes) -> dict:
    """What the page's form would post, with ``changes`` applied (the fields as the admin renders them)."""
    r = client.get(url)
    assert r.status_code == 200
    data: dict = {}
    _add_fields(data, r.context["adminform"].form)
    for inline in r.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update({formset.management_form.add_prefix(k): v for k, v in formset.management_form.initial.items()})
        for form in formset.forms:
            _add_fields(data, form)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def _saved(r) -> bool:
    return r.status_code == 302


def _form_errors(r) -> str:
    assert r.status_code == 200, r
    form = r.context["adminform"].form
    text = " ".join(str(m) for messages in form.errors.values() for m in messages)
    for inline in r.context["inline_admin_formsets"]:
        text += " ".join(str(e) for e in inline.formset.errors)
    return text


def _audit(model, obj, action: str) -> AuditEntry:
    return AuditEntry.objects.get(action=f"{model._meta.model_name}.{action}", object_id=str(obj.pk))


# --- every rule edit is audited from → to -------------------------------------------------


def test_a_calendar_edit_and_its_added_date_are_audited(admin_client, admin_user):
    calendar = BusinessCalendar.objects.get()
    url = _url(BusinessCalendar, "change", calendar.pk)
    hours = '{"1": [["09:00", "18:00"]], "6": [["10:00", "14:00"]]}'
    data = _form_data(
        admin_client,
        url,
        weekly_hours=hours,
        timezone="Asia/Hong_Kong",
        **{"dates-TOTAL_FORMS": "1", "dates-0-date": "2026-10-09", "dates-0-kind": "holiday", "dates-0-name": "团建"},
    )
    r = admin_client.post(url, data)
    assert _saved(r), _form_errors(r)
    calendar.refresh_from_db()
    assert calendar.weekly_hours == {"1": [["09:00", "18:00"]], "6": [["10:00", "14:00"]]}
    entry = _audit(BusinessCalendar, calendar, "change")
    assert entry.actor_id == admin_user.pk
    assert entry.changes["timezone"] == ["Asia/Shanghai", "Asia/Hong_Kong"]
    assert entry.changes["weekly_hours"][1] == calendar.weekly_hours
    assert set(entry.changes) == {"timezone", "weekly_hours"}
    date = CalendarDate.objects.get(calendar=calendar)
    assert _audit(CalendarDate, date, "create").changes["date"] == [None, "2026-10-09"]


def test_a_new_calendar_and_its_dates_are_created_through_the_service(admin_client, admin_user):
    r = admin_client.post(
        _url(BusinessCalendar, "add"),
        {
            "name": "客服 7×12",
            "timezone": "Asia/Shanghai",
            "weekly_hours": '{"1": [["09:00", "21:00"]], "7": [["09:00", "21:00"]]}',
            "dates-TOTAL_FORMS": "2",
            "dates-INITIAL_FORMS": "0",
            "dates-0-date": "2026-10-01",
            "dates-0-kind": "workday",
            "dates-1-date": "2026-10-02",
            "dates-1-kind": "holiday",
        },
    )
    assert _saved(r), _form_errors(r)
    calendar = BusinessCalendar.objects.get(name="客服 7×12")
    assert calendar.china_holidays is False  # the box was left unticked
    assert _audit(BusinessCalendar, calendar, "create").actor_id == admin_user.pk
    dates = CalendarDate.objects.filter(calendar=calendar).order_by("date")
    assert [(d.date.isoformat(), d.kind) for d in dates] == [("2026-10-01", "workday"), ("2026-10-02", "holiday")]
    assert AuditEntry.objects.filter(action="calendardate.create").count() == 2


def test_a_calendar_date_deleted_in_the_inline_is_audited(admin_client):
    calendar = BusinessCalendar.objects.get()
    date = rules.rule_save(
        obj=CalendarDate(calendar=calendar, date=datetime(2026, 5, 6).date(), kind="holiday"), actor=None
    )
    url = _url(BusinessCalendar, "change", calendar.pk)
    r = admin_client.post(url, _form_data(admin_client, url, **{"dates-0-DELETE": "on"}))
    assert _saved(r), _form_errors(r)
    assert not CalendarDate.objects.exists()
    assert _audit(CalendarDate, date, "delete").changes["kind"] == ["holiday", None]


def test_a_team_edit_records_lead_and_members_from_to(admin_client, make_user, admin_user):
    a, b = make_user("operator", username="li"), make_user("community_manager", username="wang")
    team = Team.objects.get(code="product")
    url = _url(Team, "change", team.pk)
    r = admin_client.post(url, _form_data(admin_client, url, lead=str(a.pk), members=[str(a.pk), str(b.pk)]))
    assert _saved(r), _form_errors(r)
    assert sorted(team.members.values_list("username", flat=True)) == ["li", "wang"]
    entry = _audit(Team, team, "change")
    assert entry.changes == {"lead": [None, a.pk], "members": [[], ["li", "wang"]]}
    assert entry.actor_id == admin_user.pk


def test_an_sla_policy_edit_is_audited(admin_client):
    policy = SlaPolicy.objects.get(priority="high")
    url = _url(SlaPolicy, "change", policy.pk)
    r = admin_client.post(url, _form_data(admin_client, url, warn_share="0.75", resolution_minutes="600"))
    assert _saved(r), _form_errors(r)
    assert _audit(SlaPolicy, policy, "change").changes == {
        "warn_share": ["0.80", "0.75"],
        "resolution_minutes": [3 * 8 * 60, 600],
    }


def test_a_matrix_cell_edited_in_the_list_goes_through_the_service(admin_client, admin_user):
    cell = PriorityRule.objects.get(impact="one", severity="minor", difficulty="easy")
    r = admin_client.post(
        _url(PriorityRule),
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-MIN_NUM_FORMS": "0",
            "form-MAX_NUM_FORMS": "1000",
            "form-0-id": str(cell.pk),
            "form-0-priority": "high",
            "_save": "Save",
        },
    )
    assert r.status_code == 302
    cell.refresh_from_db()
    assert cell.priority == "high"
    entry = _audit(PriorityRule, cell, "change")
    assert entry.changes == {"priority": ["normal", "high"]} and entry.actor_id == admin_user.pk
    assert _ticket().priority == "high"  # the next ticket is decided by the edited cell


def test_a_vip_rule_and_a_canned_reply_are_audited_on_create_change_and_delete(admin_client):
    rule = VipRule.objects.get()
    url = _url(VipRule, "change", rule.pk)
    r = admin_client.post(url, _form_data(admin_client, url, tiers='["super_vip"]', raise_by="2"))
    assert _saved(r), _form_errors(r)
    assert _audit(VipRule, rule, "change").changes == {
        "tiers": [["super_vip", "core"], ["super_vip"]],
        "raise_by": [1, 2],
    }

    r = admin_client.post(
        _url(CannedReply, "add"),
        {"name": "Thanks", "body": "谢谢 {{ customer_name }}", "category": "", "is_active": "on"},
    )
    assert _saved(r), _form_errors(r)
    reply = CannedReply.objects.get(name="Thanks")
    assert _audit(CannedReply, reply, "create").changes["body"] == [None, "谢谢 {{ customer_name }}"]
    r = admin_client.post(_url(CannedReply, "delete", reply.pk), {"post": "yes"})
    assert r.status_code == 302 and not CannedReply.objects.filter(pk=reply.pk).exists()
    assert _audit(CannedReply, reply, "delete").changes["name"] == ["Thanks", None]


def test_an_unchanged_save_writes_no_audit_row(admin_client):
    policy = SlaPolicy.objects.get(priority="low")
    url = _url(SlaPolicy, "change", policy.pk)
    assert _saved(admin_client.post(url, _form_data(admin_client, url)))
    assert not AuditEntry.objects.exists()


# --- every refused edit is a form error with the service's message, nothing written ----


def _refused(client, model, obj, **changes) -> str:
    """Posts the edit, checks it was refused with nothing written, and returns the form's errors."""
    url = _url(model, "change", obj.pk)
    before = {f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields}
    r = client.post(url, _form_data(client, url, **changes))
    assert r.status_code == 200, "the edit was saved"
    obj.refresh_from_db()
    assert {f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields} == before
    assert not AuditEntry.objects.exists()
    return _form_errors(r)


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ('{"1": [["09:00", "12:00"], ["11:00", "18:00"]]}', "overlap"),
        ('{"1": [["18:00", "09:00"]]}', "ends before it starts"),
        ('{"1": [["9am", "5pm"]]}', "is not a span of two HH:MM times"),
        ('{"8": [["09:00", "12:00"]]}', "Unknown weekday 8"),
        ('{"1": "09:00-18:00"}', "list of [start, end] spans"),
        ("{}", "no working time"),
        ('{"1": [], "2": []}', "no working time"),
    ],
)
def test_a_calendar_with_bad_hours_is_refused_on_the_form(admin_client, hours, message):
    assert message in _refused(admin_client, BusinessCalendar, BusinessCalendar.objects.get(), weekly_hours=hours)


def test_a_calendar_with_an_unknown_timezone_is_refused(admin_client):
    assert "Unknown timezone Mars/Base" in _refused(
        admin_client,
        BusinessCalendar,
        BusinessCalendar.objects.get(),
        timezone="Mars/Base",
    )


def test_a_new_calendar_without_working_time_is_not_created(admin_client):
    r = admin_client.post(
        _url(BusinessCalendar, "add"),
        {
            "name": "Weekends off and weekdays too",
            "timezone": "Asia/Shanghai",
            "weekly_hours": "{}",
            "china_holidays": "on",
            "dates-TOTAL_FORMS": "0",
            "dates-INITIAL_FORMS": "0",
        },
    )
    assert "no working time" in _form_errors(r)
    assert BusinessCalendar.objects.count() == 1 and not AuditEntry.objects.exists()


def test_a_warn_share_of_1_5_is_refused(admin_client):
    policy = SlaPolicy.objects.get(priority="normal")
    assert "The warning share must lie between 0 and 1" in _refused(admin_client, SlaPolicy, policy, warn_share="1.5")


def test_a_policy_without_any_target_or_with_a_zero_target_is_refused(admin_client):
    policy = SlaPolicy.objects.get(priority="normal")
    assert "An SLA policy needs at least one target" in _refused(
        admin_client,
        SlaPolicy,
        policy,
        first_response_minutes="",
        resolution_minutes="",
    )
    assert "A target is more than 0" in _refused(admin_client, SlaPolicy, policy, first_response_minutes="0")


def test_a_canned_reply_with_an_unclosed_if_is_refused(admin_client):
    reply = rules.rule_save(obj=CannedReply(name="Hi", body="Hi {{ customer_name }}"), actor=None)
    AuditEntry.objects.all().delete()
    assert "The body is not a valid template: Unclosed tag" in _refused(
        admin_client,
        CannedReply,
        reply,
        body="{% if customer_name %}Hi {{ customer_name }}",
    )


def test_a_vip_rule_with_an_unknown_tier_is_refused(admin_client):
    assert "Unknown value tier(s) gold; known: super_vip" in _refused(
        admin_client, VipRule, VipRule.objects.get(), tiers='["gold"]'
    )


def test_a_vip_rule_matching_nobody_or_with_a_bad_group_is_refused(admin_client):
    rule = VipRule.objects.get()
    assert "needs at least one value tier or RFM group" in _refused(
        admin_client, VipRule, rule, tiers="[]", rfm_groups=""
    )
    assert "RFM groups are a list of short codes" in _refused(admin_client, VipRule, rule, rfm_groups='["has space"]')


def test_a_team_lead_outside_the_team_who_is_not_an_admin_is_refused(admin_client, make_user):
    outsider = make_user("operator", username="outsider")
    viewer = make_user("viewer", username="looker")
    team = Team.objects.get(code="tech")
    assert "The team lead must be a member of the team" in _refused(admin_client, Team, team, lead=str(outsider.pk))
    assert "looker cannot work tickets" in _refused(admin_client, Team, team, members=[str(viewer.pk)])
    assert not team.members.exists()


def test_a_bad_inline_date_writes_nothing(admin_client):
    calendar = BusinessCalendar.objects.get()
    url = _url(BusinessCalendar, "change", calendar.pk)
    data = _form_data(
        admin_client,
        url,
        weekly_hours='{"1": [["09:00", "18:00"]]}',
        **{"dates-TOTAL_FORMS": "1", "dates-0-date": "2150-01-01", "dates-0-kind": "holiday"},
    )
    r = admin_client.post(url, data)
    assert r.status_code == 200 and "Enter a date between" in _form_errors(r)
    calendar.refresh_from_db()
    assert calendar.weekly_hours["2"] and not CalendarDate.objects.exists() and not AuditEntry.objects.exists()


# --- the service itself ----------------------------------------------------------------


def test_the_service_refuses_with_a_code_and_every_problem():
    calendar = BusinessCalendar.objects.get()
    calendar.weekly_hours, calendar.timezone = {"1": [["10:00", "09:00"]]}, "Nowhere/City"
    with pytest.raises(ApplicationError) as caught:
        rules.rule_save(obj=calendar, actor=None)
    assert caught.value.code == "calendar_hours_invalid"
    assert [e["code"] for e in caught.value.details["errors"]] == [
        "calendar_hours_invalid",
        "calendar_no_working_time",
        "calendar_timezone_unknown",
    ]
    calendar.refresh_from_db()
    assert calendar.timezone == "Asia/Shanghai" and not AuditEntry.objects.exists()


def test_calendar_errors_accepts_a_day_to_midnight_and_refuses_the_rest():
    assert rules.calendar_errors({"1": [["00:00", "24:00"]], "2": [["09:00", "12:00"], ["12:00", "13:00"]]}) == []
    assert rules.calendar_errors([]) and rules.calendar_errors({"1": [["24:00", "24:00"]]})
    assert rules.calendar_errors({"1": [["09:60", "10:00"]]})


def test_a_calendar_a_team_uses_cannot_be_deleted():
    with pytest.raises(ApplicationError) as caught:
        rules.rule_delete(obj=BusinessCalendar.objects.get(), actor=None)
    assert caught.value.code == "rule_in_use"
    assert BusinessCalendar.objects.exists() and not AuditEntry.objects.exists()


# --- tickets: read-mostly, edits through the ticket services ------------------------------


def test_a_ticket_edit_goes_through_ticket_update_and_ticket_assign(admin_client, operator, admin_user):
    ticket = _ticket()
    url = _url(Ticket, "change", ticket.pk)
    r = admin_client.post(url, _form_data(admin_client, url, priority="urgent", assignee=str(operator.pk)))
    assert _saved(r), _form_errors(r)
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.assignee_id) == ("urgent", operator.pk)
    assert ticket.priority_basis["set_by"]["user"] == "boss"
    updated = TicketEvent.objects.get(ticket=ticket, action="updated")
    assert updated.changes == {"priority": ["normal", "urgent"]} and updated.actor_id == admin_user.pk
    assert TicketEvent.objects.get(ticket=ticket, action="assigned").changes == {"assignee": [None, "op1"]}


def test_a_refused_ticket_edit_is_a_form_error_and_writes_nothing(admin_client, make_user):
    ticket = _ticket()  # operations
    outsider = make_user("operator", username="not-in-ops")
    url = _url(Ticket, "change", ticket.pk)
    events = TicketEvent.objects.count()
    r = admin_client.post(url, _form_data(admin_client, url, assignee=str(outsider.pk), priority="high"))
    assert "not-in-ops is not in the" in _form_errors(r)
    ticket.refresh_from_db()
    assert (ticket.assignee_id, ticket.priority) == (None, "normal")
    assert TicketEvent.objects.count() == events  # the dry run's update was rolled back too


def test_a_closed_ticket_refuses_edits_on_the_form(admin_client):
    ticket = _ticket()
    services.ticket_transition(ticket=ticket, action="resolve", now=NOW)
    services.ticket_transition(ticket=ticket, action="close", now=NOW)
    url = _url(Ticket, "change", ticket.pk)
    r = admin_client.post(url, _form_data(admin_client, url, category="complaint"))
    assert "This ticket is closed: reopen it first." in _form_errors(r)
    assert Ticket.objects.get(pk=ticket.pk).category == "question"


def test_tickets_are_never_added_by_hand_or_deleted(admin_client):
    ticket = _ticket()
    assert admin_client.get(_url(Ticket, "add")).status_code == 403
    assert admin_client.post(_url(Ticket, "delete", ticket.pk), {"post": "yes"}).status_code == 403
    assert Ticket.objects.filter(pk=ticket.pk).exists()


def test_the_ticket_list_filters_and_searches_by_number_and_subject(admin_client):
    a = _ticket(subject="支付失败 payment failed", category="complaint")
    b = _ticket(subject="Dark mode please", category="suggestion")

    def listed(**params) -> list[int]:
        return [t.pk for t in admin_client.get(_url(Ticket), params).context["cl"].result_list]

    assert listed(q=f"#{b.pk}") == [b.pk]
    assert listed(q="支付") == [a.pk]
    assert listed(category__exact="suggestion") == [b.pk]
    assert listed(team__id__exact=str(Team.objects.get(code="tech").pk)) == [a.pk]
    assert sorted(listed(status__exact="new")) == sorted([a.pk, b.pk])


def test_an_operator_sees_only_their_teams_tickets_in_the_admin(operator):
    mine = _ticket(category="question")  # operations
    services.ticket_assign(ticket=mine, team=mine.team, assignee=None, actor=None)
    other = _ticket(category="complaint")  # tech
    services.ticket_transition(ticket=other, action="triage")
    client = _staff_client(operator)
    listed = [t.pk for t in client.get(_url(Ticket)).context["cl"].result_list]
    assert listed == [mine.pk]
    assert client.get(_url(Ticket, "change", other.pk)).status_code == 302  # not found for this viewer
    # Records across tickets are for those who see every queue.
    assert client.get(_url(TicketEvent)).status_code == 403

"""Keyword alerts: the scan after ingestion (alerts once per message and rule, hit counts,
incidents within the window, one crisis ticket per incident, the owner's email),
dismissal and acknowledgement, the pages and the dashboard card per manager, the rule
admin refusing a bad pattern — and one run through a real worker, timed."""

import time
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from communities.models import Alert, AlertStatus, CommunitySettings, GroupMessage, Incident, KeywordRule
from communities.services import alerts as services
from communities.services import groups as group_services
from communities.tasks.alerts import messages_scan_task
from core.errors import ApplicationError, Conflict
from core.models import AuditEntry
from feedback.models import Message, Priority, SlaTarget, Source, Ticket

from .alerts_ingest_data import group_make, member_make, message, rule_make


@pytest.fixture
def owner(make_user):
    return make_user("community_manager", "mgr-one", email="mgr-one@example.com")


@pytest.fixture
def second(make_user):
    return make_user("community_manager", "mgr-two", email="mgr-two@example.com")


@pytest.fixture
def group(owner):
    group = group_make(owner)
    member_make(group, wxid="wx-ann", external_id="ann")
    return group


@pytest.fixture
def rules(db):
    return {
        "refund": rule_make("退款", severity=5, name="退款危机"),
        "scam": rule_make(r"骗子|诈骗", kind="pattern", severity=4, name="诈骗"),
        "price": rule_make("价格", severity=2, name="价格"),
    }


def _ingest(api, capture, group, items) -> list[int]:
    """Posts the messages; returns the ids the scan was queued with (not run)."""
    with capture(execute=False) as callbacks:
        r = api.post(f"/api/v1/communities/{group.pk}/messages/batch", {"items": items}, format="json")
    assert r.status_code == 200 and not r.json()["errors"], r.content
    return [i for cb in callbacks if getattr(cb, "func", None) == messages_scan_task.delay for i in cb.args[0]]


def _scan(capture, ids, now=None) -> int:
    with capture(execute=True):  # the owner's email goes out on commit
        return services.messages_scan(message_ids=ids, now=now)


pytestmark = pytest.mark.django_db


def test_a_crisis_keyword_raises_an_alert_and_opens_a_crisis_ticket(
    api, group, rules, django_capture_on_commit_callbacks
):
    ids = _ingest(
        api,
        django_capture_on_commit_callbacks,
        group,
        [message("m1", "我要退 款！！", member="wx-ann"), message("m2", "今天天气不错", member="wx-ann")],
    )
    assert _scan(django_capture_on_commit_callbacks, ids) == 1
    alert = Alert.objects.get()
    assert (alert.message.external_id, alert.rule_id, alert.matched, alert.status) == (
        "m1",
        rules["refund"].pk,
        "退款",
        AlertStatus.OPEN,
    )
    assert KeywordRule.objects.get(pk=rules["refund"].pk).hit_count == 1
    incident = Incident.objects.get()
    assert alert.incident == incident and incident.severity == 5
    ticket = Ticket.objects.get(pk=incident.ticket_id)
    assert (ticket.source, ticket.priority) == (Source.COMMUNITY, Priority.CRISIS)
    assert ticket.customer.external_id == "ann"
    first = SlaTarget.objects.get(ticket=ticket, kind="first_response")
    assert (first.target_seconds, first.business_hours) == (3600, False)  # the crisis clock
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["mgr-one@example.com"]
    assert group.name in mail.outbox[0].subject
    assert AuditEntry.objects.filter(action="community_incident.open", object_id=str(incident.pk)).exists()


def test_a_second_run_changes_nothing(api, group, rules, django_capture_on_commit_callbacks):
    ids = _ingest(api, django_capture_on_commit_callbacks, group, [message("m1", "骗子！退款", member="wx-ann")])
    assert messages_scan_task(ids) == 2
    assert messages_scan_task(ids) == 0
    assert Alert.objects.count() == 2 and Incident.objects.count() == 1 and Ticket.objects.count() == 1
    assert sorted(KeywordRule.objects.filter(hit_count__gt=0).values_list("name", "hit_count")) == [
        ("诈骗", 1),
        ("退款危机", 1),
    ]


def test_repeated_hits_within_the_window_attach_to_the_incident_and_its_ticket(
    api, group, rules, django_capture_on_commit_callbacks
):
    now = timezone.now()
    first = _ingest(api, django_capture_on_commit_callbacks, group, [message("m1", "退款", member="wx-ann")])
    _scan(django_capture_on_commit_callbacks, first, now=now)
    later = _ingest(api, django_capture_on_commit_callbacks, group, [message("m2", "还是要退款", member="wx-ann")])
    _scan(django_capture_on_commit_callbacks, later, now=now + timedelta(minutes=30))
    incident = Incident.objects.get()
    assert Alert.objects.filter(incident=incident).count() == 2
    assert Ticket.objects.count() == 1
    notes = Message.objects.filter(ticket_id=incident.ticket_id, kind=Message.Kind.NOTE)
    assert notes.count() == 1 and "还是要退款" in notes.get().body
    assert len(mail.outbox) == 1  # one email per incident, not per hit
    assert KeywordRule.objects.get(pk=rules["refund"].pk).hit_count == 2

    # Past the window (60 minutes after the last hit) a new incident opens its own ticket.
    again = _ingest(api, django_capture_on_commit_callbacks, group, [message("m3", "退款!!", member="wx-ann")])
    _scan(django_capture_on_commit_callbacks, again, now=now + timedelta(minutes=91))
    assert Incident.objects.count() == 2 and Ticket.objects.count() == 2
    assert len(mail.outbox) == 2


def test_below_the_ticket_severity_an_alert_opens_no_ticket(api, group, rules, django_capture_on_commit_callbacks):
    ids = _ingest(api, django_capture_on_commit_callbacks, group, [message("m1", "价格太贵", member="wx-ann")])
    _scan(django_capture_on_commit_callbacks, ids)
    assert Alert.objects.get().severity == 2
    assert Incident.objects.get().ticket_id is None
    assert not Ticket.objects.exists()
    # An admin lowers the threshold: the next hit in the incident opens the ticket.
    CommunitySettings.objects.update_or_create(pk=1, defaults={"ticket_severity": 2})
    ids = _ingest(api, django_capture_on_commit_callbacks, group, [message("m2", "价格!!", member="wx-ann")])
    _scan(django_capture_on_commit_callbacks, ids)
    assert Incident.objects.get().ticket_id == Ticket.objects.get().pk


def test_the_matcher_is_rebuilt_only_when_the_rules_change(rules):
    first, _info = services.matcher_get()
    assert services.matcher_get()[0] is first
    rules["price"].is_active = False
    services.keyword_rule_save(rule=rules["price"], actor=None)
    rebuilt, info = services.matcher_get()
    assert rebuilt is not first and rules["price"].pk not in info
    assert rebuilt.match("价格") == []


def test_an_edit_of_a_rule_keeps_its_counts(rules):
    KeywordRule.objects.filter(pk=rules["refund"].pk).update(hit_count=5, dismissed_count=2)
    stale = rules["refund"]  # read before the counts moved
    stale.severity = 4
    services.keyword_rule_save(rule=stale, actor=None)
    stored = KeywordRule.objects.get(pk=stale.pk)
    assert (stored.severity, stored.hit_count, stored.dismissed_count) == (4, 5, 2)


# --- handling alerts ---------------------------------------------------------------


@pytest.fixture
def alert(api, group, rules, django_capture_on_commit_callbacks):
    ids = _ingest(api, django_capture_on_commit_callbacks, group, [message("m1", "退款", member="wx-ann")])
    _scan(django_capture_on_commit_callbacks, ids)
    return Alert.objects.get()


def test_dismissing_a_false_positive_needs_a_reason_and_counts_for_the_rule(alert, owner):
    with pytest.raises(ApplicationError) as exc:
        services.alert_dismiss(alert=alert, reason="  ", actor=owner)
    assert exc.value.details == {"reason": ["required"]}
    assert Alert.objects.get(pk=alert.pk).status == AlertStatus.OPEN
    services.alert_dismiss(alert=alert, reason="quoting the refund policy", actor=owner)
    stored = Alert.objects.get(pk=alert.pk)
    assert (stored.status, stored.dismiss_reason, stored.handled_by) == (
        AlertStatus.DISMISSED,
        "quoting the refund policy",
        owner,
    )
    assert KeywordRule.objects.get(pk=alert.rule_id).dismissed_count == 1
    note = Message.objects.get(ticket_id=alert.incident.ticket_id, kind=Message.Kind.NOTE)
    assert "quoting the refund policy" in note.body
    with pytest.raises(Conflict):
        services.alert_dismiss(alert=alert, reason="again", actor=owner)
    assert KeywordRule.objects.get(pk=alert.rule_id).dismissed_count == 1
    assert AuditEntry.objects.filter(action="community_alert.dismiss", object_id=str(alert.pk)).count() == 1


def test_acknowledging_moves_an_open_alert_once(alert, owner):
    services.alert_acknowledge(alert=alert, actor=owner)
    assert Alert.objects.get(pk=alert.pk).status == AlertStatus.ACKNOWLEDGED
    with pytest.raises(Conflict):
        services.alert_acknowledge(alert=alert, actor=owner)


def _client(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def test_the_owner_lists_filters_and_handles_the_alerts_on_the_pages(alert, owner):
    client = _client(owner)
    r = client.get("/communities/alerts/")
    assert r.status_code == 200 and [a.pk for a in r.context["alerts"]] == [alert.pk]
    assert client.get("/communities/alerts/", {"severity": 5, "group": alert.group_id}).context["alerts"] == [alert]
    assert client.get("/communities/alerts/", {"status": "dismissed"}).context["alerts"] == []
    assert client.get(f"/communities/alerts/{alert.pk}/").status_code == 200

    r = client.post(f"/communities/alerts/{alert.pk}/dismiss", {"reason": ""})
    assert r.status_code == 400 and Alert.objects.get(pk=alert.pk).status == AlertStatus.OPEN
    r = client.post(f"/communities/alerts/{alert.pk}/acknowledge")
    assert r.status_code == 302 and Alert.objects.get(pk=alert.pk).status == AlertStatus.ACKNOWLEDGED
    r = client.post(f"/communities/alerts/{alert.pk}/dismiss", {"reason": "a joke"})
    assert r.status_code == 302 and Alert.objects.get(pk=alert.pk).status == AlertStatus.DISMISSED
    noise = client.get("/communities/alerts/rules/")
    assert [(row["rule"].pk, row["hits"], row["dismissed"]) for row in noise.context["rows"]] == [(alert.rule_id, 1, 1)]


def test_a_second_manager_sees_nothing_of_the_first_ones_alerts(alert, second):
    client = _client(second)
    assert client.get("/communities/alerts/").context["alerts"] == []
    assert client.get("/communities/alerts/", {"group": alert.group_id}).status_code == 404
    assert client.get(f"/communities/alerts/{alert.pk}/").status_code == 404
    assert client.post(f"/communities/alerts/{alert.pk}/acknowledge").status_code == 404
    assert client.post(f"/communities/alerts/{alert.pk}/dismiss", {"reason": "mine now"}).status_code == 404
    assert client.get("/communities/alerts/rules/").context["rows"] == []
    home = client.get("/")
    assert home.context["alerts_card"]["count"] == 0
    assert Alert.objects.get(pk=alert.pk).status == AlertStatus.OPEN


def test_a_group_admin_without_the_alert_right_may_look_but_not_handle(alert, owner, make_user):
    helper = make_user("group_admin", "core-member")
    group_services.staff_grant(group=alert.group, user=helper, actor=owner, can_post=True)
    client = _client(helper)
    assert client.get(f"/communities/alerts/{alert.pk}/").context["can_handle"] is False
    assert client.post(f"/communities/alerts/{alert.pk}/dismiss", {"reason": "no"}).status_code == 403
    assert client.post(f"/communities/alerts/{alert.pk}/acknowledge").status_code == 403
    assert Alert.objects.get(pk=alert.pk).status == AlertStatus.OPEN
    group_services.staff_grant(group=alert.group, user=helper, actor=owner, can_handle_alerts=True)
    assert client.post(f"/communities/alerts/{alert.pk}/acknowledge").status_code == 302
    assert Alert.objects.get(pk=alert.pk).status == AlertStatus.ACKNOWLEDGED


def test_the_dashboard_shows_the_owner_their_open_alerts(alert, owner):
    r = _client(owner).get("/")
    assert r.context["alerts_card"]["count"] == 1
    assert f'data-alert="{alert.pk}"' in r.content.decode()


# --- the rule admin -----------------------------------------------------------------


def test_the_admin_refuses_an_invalid_pattern_with_the_reason_and_saves_nothing(make_user):
    client = _client(make_user("admin", "boss"))
    url = "/admin/communities/keywordrule/add/"
    base = {"name": "bad", "severity": 4, "is_active": "on"}
    for kind, pattern, reason in [
        ("pattern", r"(a)\1", "RE2"),  # a back-reference: RE2 has none
        ("pattern", "(unclosed", "RE2"),
        ("pattern", "a*", "empty"),
        ("keyword", "- - -", "punctuation"),
    ]:
        r = client.post(url, {**base, "kind": kind, "pattern": pattern})
        assert r.status_code == 200, pattern
        errors = " ".join(r.context["adminform"].form.errors["pattern"])
        assert reason in errors, (pattern, errors)
    assert not KeywordRule.objects.exists()
    r = client.post(url, {**base, "kind": "pattern", "pattern": r"退\s*款"})
    assert r.status_code == 302
    rule = KeywordRule.objects.get()
    assert AuditEntry.objects.filter(action="keyword_rule.create", object_id=str(rule.pk)).exists()


def test_the_alert_and_incident_admin_are_read_only(alert, make_user):
    client = _client(make_user("admin", "boss"))
    assert client.get("/admin/communities/alert/").status_code == 200
    assert client.get("/admin/communities/incident/").status_code == 200
    assert client.get("/admin/communities/alert/add/").status_code == 403
    r = client.post(f"/admin/communities/alert/{alert.pk}/change/", {"status": "dismissed"})
    assert r.status_code == 403
    assert Alert.objects.get(pk=alert.pk).status == AlertStatus.OPEN


# --- through a real worker --------------------------------------------------------------


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_ingested_crisis_keyword_is_a_crisis_ticket_within_a_minute(worker_queue, api, group, rules):
    started = time.monotonic()
    r = api.post(
        f"/api/v1/communities/{group.pk}/messages/batch",
        {"items": [message("m1", "你们是骗子，我要退款", member="wx-ann")]},
        format="json",
    )
    assert r.status_code == 200 and r.json()["created"] == 1
    deadline = started + 90
    while time.monotonic() < deadline and not Incident.objects.filter(ticket_id__isnull=False).exists():
        time.sleep(0.25)
    latency = time.monotonic() - started
    print(f"ingestion → alert and crisis ticket: {latency:.2f} s")
    assert latency < 60, f"ingestion → alert took {latency:.1f} s"
    message_id = GroupMessage.objects.get(external_id="m1").pk
    assert set(Alert.objects.filter(message_id=message_id).values_list("rule__name", flat=True)) == {"诈骗", "退款危机"}
    ticket = Ticket.objects.get(pk=Incident.objects.get().ticket_id)
    assert ticket.priority == Priority.CRISIS and ticket.source == Source.COMMUNITY
    first = SlaTarget.objects.get(ticket=ticket, kind="first_response")
    assert first.target_seconds == 3600 and not first.business_hours
    assert first.due_at - ticket.created_at == timedelta(hours=1)

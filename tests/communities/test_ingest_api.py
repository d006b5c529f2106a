"""The bots' batch endpoints: messages (idempotent by external_id, senders by customer or
platform member id, the keyword scan queued on commit), check-ins and sign-ups feeding
the incentive earning rules through the events they append — and every bad input."""

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from communities.models import Activity, ActivitySignup, CheckIn, GroupMessage
from communities.services import groups as group_services
from communities.tasks.alerts import messages_scan_task
from core.models import AuditEntry
from incentives import tasks as incentive_tasks
from incentives.models import EarningRule, PointsAccount, RuleKind
from users.models import Event

from .alerts_ingest_data import AT, group_make, member_make, message

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(make_user):
    return make_user("community_manager", "mgr-one")


@pytest.fixture
def group(owner):
    return group_make(owner)


@pytest.fixture
def members(group):
    return member_make(group, wxid="wx-ann", external_id="ann"), member_make(group, wxid="wx-bob", external_id="bob")


def _url(group, what="messages"):
    return f"/api/v1/communities/{group.pk}/{what}/batch"


def _post(client, url, items, **envelope):
    return client.post(url, {"items": items, **envelope}, format="json")


def _queued(callbacks, task):
    return [i for cb in callbacks if getattr(cb, "func", None) == task.delay for i in cb.args[0]]


def test_messages_are_stored_by_member_or_customer_and_a_replay_is_unchanged(
    api, group, members, django_capture_on_commit_callbacks
):
    items = [message("m1", "大家好", member="wx-ann"), message("m2", "早上好", customer="bob")]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        r = _post(api, _url(group), items)
    assert r.status_code == 200, r.content
    assert r.json() == {"created": 2, "updated": 0, "unchanged": 0, "errors": []}
    stored = dict(GroupMessage.objects.filter(group=group).values_list("external_id", "customer__external_id"))
    assert stored == {"m1": "ann", "m2": "bob"}
    # The keyword scan is queued after the commit, with the new messages' ids.
    assert sorted(_queued(callbacks, messages_scan_task)) == sorted(
        GroupMessage.objects.filter(group=group).values_list("id", flat=True)
    )
    assert AuditEntry.objects.filter(action="community_messages.ingest", object_id=str(group.pk)).count() == 1

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        again = _post(api, _url(group), [*items, message("m3", "new", member="wx-bob")])
    assert again.json() == {"created": 1, "updated": 0, "unchanged": 2, "errors": []}
    assert _queued(callbacks, messages_scan_task) == [GroupMessage.objects.get(external_id="m3").pk]
    assert GroupMessage.objects.filter(group=group).count() == 3


def test_the_same_external_id_in_another_group_is_another_message(api, group, members, owner):
    other = group_make(owner, code="cyclists", name="骑行群")
    member_make(other, wxid="wx-ann", external_id="ann-2")
    assert _post(api, _url(group), [message("m1", "hi", member="wx-ann")]).json()["created"] == 1
    assert _post(api, _url(other), [message("m1", "hi", member="wx-ann")]).json()["created"] == 1
    assert GroupMessage.objects.count() == 2


def test_unknown_members_and_customers_are_row_errors_and_the_good_rows_are_kept(api, group, members):
    items = [
        message("m1", "ok", member="wx-ann"),
        message("m2", "who?", member="wx-nobody"),
        message("m3", "who?", customer="ghost"),
    ]
    body = _post(api, _url(group), items).json()
    assert body["created"] == 1
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "member"), (2, "customer")]
    assert "wx-nobody" in body["errors"][0]["message"]
    assert list(GroupMessage.objects.values_list("external_id", flat=True)) == ["m1"]


def test_atomic_with_a_bad_item_is_422_and_writes_nothing(api, group, members):
    items = [message("m1", "ok", member="wx-ann"), message("m2", "who?", member="wx-nobody")]
    r = _post(api, _url(group), items, atomic=True)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "batch_rejected"
    assert r.json()["error"]["details"]["errors"][0]["index"] == 1
    assert not GroupMessage.objects.exists()


def test_a_duplicate_message_in_one_batch_is_an_error_for_the_second(api, group, members):
    items = [message("m1", "a", member="wx-ann"), message("m1", "b", member="wx-bob")]
    body = _post(api, _url(group), items).json()
    assert body["created"] == 1
    assert body["errors"][0]["index"] == 1 and body["errors"][0]["field"] == "external_id"
    assert GroupMessage.objects.get(external_id="m1").text == "a"


def test_a_sender_is_named_once_and_bad_fields_are_row_errors(api, group, members):
    both = {**message("m1", "x", member="wx-ann"), "customer": "ann"}
    neither = {"external_id": "m2", "sent_at": AT.isoformat(), "text": "x"}
    no_offset = {**message("m3", "x", member="wx-ann"), "sent_at": "2026-03-02T10:00:00"}
    body = _post(api, _url(group), [both, neither, no_offset]).json()
    assert body["created"] == 0
    assert sorted({e["index"] for e in body["errors"]}) == [0, 1, 2]
    assert not GroupMessage.objects.exists()


def test_an_unknown_group_is_404_in_the_error_shape(api, group, members):
    r = _post(api, f"/api/v1/communities/{group.pk + 999}/messages/batch", [message("m1", "x", member="wx-ann")])
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "unknown_group"
    assert not GroupMessage.objects.exists()


def test_a_batch_over_1000_items_and_malformed_envelopes_are_400(api, group, members):
    too_many = [message(f"m{i}", "x", member="wx-ann") for i in range(1001)]
    r = _post(api, _url(group), too_many)
    assert r.status_code == 400 and r.json()["error"]["code"] == "batch_too_large"
    for body in ({"items": "nope"}, {"items": [], "extra": 1}, [1, 2], {"items": [], "atomic": "yes"}):
        r = api.post(_url(group), body, format="json")
        assert r.status_code == 400, body
        assert r.json()["error"]["code"] == "malformed_request"
    assert not GroupMessage.objects.exists()


def test_a_key_without_the_communities_scope_is_403_and_no_key_401(make_api, group, members):
    r = _post(make_api(["customers:write"]), _url(group), [message("m1", "x", member="wx-ann")])
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "permission_denied"
    assert _post(APIClient(), _url(group), [message("m1", "x", member="wx-ann")]).status_code == 401
    ok = _post(make_api(["communities:write"]), _url(group), [message("m1", "x", member="wx-ann")])
    assert ok.status_code == 200 and ok.json()["created"] == 1


def test_an_operator_session_writes_only_to_groups_they_manage(make_user, owner, group, members):
    second = make_user("community_manager", "mgr-two")
    client = APIClient()
    client.force_login(second)
    r = _post(client, _url(group), [message("m1", "x", member="wx-ann")])
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_group"
    viewer = make_user("operator", "op")  # sees every group, manages none, lacks the permission
    client.force_login(viewer)
    assert _post(client, _url(group), [message("m1", "x", member="wx-ann")]).status_code == 403
    client.force_login(owner)
    assert _post(client, _url(group), [message("m1", "x", member="wx-ann")]).json()["created"] == 1
    assert GroupMessage.objects.count() == 1


def test_the_queries_of_a_batch_do_not_grow_with_its_size(api, group, members):
    def run(prefix, n):
        items = [message(f"{prefix}{i}", "x", member=["wx-ann", "wx-bob"][i % 2]) for i in range(n)]
        items.append(message(f"{prefix}-c", "x", customer="ann"))
        with CaptureQueriesContext(connection) as ctx:
            assert _post(api, _url(group), items).json()["created"] == n + 1
        return len(ctx.captured_queries)

    run("warm", 1)  # the key's last use is written once a minute, on the first request
    # 150: SQLite's bound-parameter limit splits an insert above ~166 messages; PostgreSQL never.
    assert run("a", 10) == run("b", 150)


# --- check-ins and sign-ups ------------------------------------------------------------


@pytest.fixture
def checkin_rule():
    EarningRule.objects.update(is_active=False)
    return EarningRule.objects.create(code="community-checkin", name="签到", kind=RuleKind.CHECKIN, points=7)


def _balance(external_id):
    account = PointsAccount.objects.filter(customer__external_id=external_id).first()
    return account.balance if account else 0


def test_a_checkin_is_stored_once_a_day_and_earns_the_checkin_points(
    api, group, members, owner, checkin_rule, django_capture_on_commit_callbacks
):
    items = [
        {"member": "wx-ann", "at": AT.isoformat(), "external_id": "ci-1"},
        {"customer": "ann", "at": (AT + timedelta(hours=1)).isoformat()},  # the same local day
        {"member": "wx-bob", "at": AT.isoformat()},
    ]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        r = _post(api, _url(group, "checkins"), items)
    assert r.json() == {"created": 2, "updated": 0, "unchanged": 1, "errors": []}, r.content
    assert sorted(CheckIn.objects.values_list("customer__external_id", "day")) == [
        ("ann", date(2026, 3, 2)),
        ("bob", date(2026, 3, 2)),
    ]
    assert Event.objects.filter(type="checkin").count() == 2
    # Points are paid by the incentives' own task, queued on commit by the events hook.
    ids = _queued(callbacks, incentive_tasks.event_rules_apply_task)
    assert len(ids) == 2
    assert _balance("ann") == 0
    assert incentive_tasks.event_rules_apply_task(ids) == 2
    assert _balance("ann") == 7 and _balance("bob") == 7

    # A replay, and a check-in the same day in another group, pay nothing more.
    again = _post(api, _url(group, "checkins"), items).json()
    assert again["created"] == 0 and again["unchanged"] == 3
    other = group_make(owner, code="cyclists", name="骑行群")
    member_make(other, wxid="wx-x", external_id="xena")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        r = _post(api, _url(other, "checkins"), [{"customer": "ann", "at": AT.isoformat()}])
    assert r.json()["created"] == 1
    incentive_tasks.event_rules_apply_task(_queued(callbacks, incentive_tasks.event_rules_apply_task))
    assert _balance("ann") == 7  # the daily check-in rule pays once a day


def test_a_checkin_for_an_unknown_member_is_a_row_error(api, group, members, checkin_rule):
    body = _post(api, _url(group, "checkins"), [{"member": "wx-ghost", "at": AT.isoformat()}]).json()
    assert body["created"] == 0 and body["errors"][0]["field"] == "member"
    assert not CheckIn.objects.exists() and not Event.objects.exists()


def test_activity_signups_earn_the_activity_points_once(api, group, members, django_capture_on_commit_callbacks):
    EarningRule.objects.update(is_active=False)
    EarningRule.objects.create(code="community-activity", name="活动", kind=RuleKind.ACTIVITY, points=20)
    activity_url = f"/api/v1/communities/{group.pk}/activities/run-5k"
    bad = api.put(
        activity_url, {"title": "5 公里", "starts_at": AT.isoformat(), "ends_at": "2026-01-01T00:00:00Z"}, format="json"
    )
    assert bad.status_code == 400 and not Activity.objects.exists()
    created = api.put(activity_url, {"title": "5 公里", "starts_at": AT.isoformat()}, format="json")
    assert created.status_code == 201 and created.json()["created"] is True
    again = api.put(activity_url, {"title": "5 公里夜跑", "starts_at": AT.isoformat()}, format="json")
    assert again.status_code == 200 and Activity.objects.get().title == "5 公里夜跑"
    url = f"/api/v1/communities/{group.pk}/activities/run-5k/signups/batch"
    items = [{"member": "wx-ann", "at": AT.isoformat()}, {"customer": "ann", "at": AT.isoformat()}]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        body = _post(api, url, items).json()
    assert body == {"created": 1, "updated": 0, "unchanged": 1, "errors": []}
    assert ActivitySignup.objects.get().customer.external_id == "ann"
    incentive_tasks.event_rules_apply_task(_queued(callbacks, incentive_tasks.event_rules_apply_task))
    assert _balance("ann") == 20
    assert _post(api, url, items).json()["unchanged"] == 2

    r = _post(api, f"/api/v1/communities/{group.pk}/activities/nope/signups/batch", items)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_activity"


def test_the_endpoints_are_in_the_openapi_document(api, make_user, client):
    client.force_login(make_user("admin", "boss"))
    r = client.get("/api/schema/", {"format": "json"})
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path in (
        "/api/v1/communities/{group_id}/messages/batch",
        "/api/v1/communities/{group_id}/checkins/batch",
        "/api/v1/communities/{group_id}/activities/{code}/signups/batch",
    ):
        assert "post" in paths[path], path
        assert "422" in paths[path]["post"]["responses"]
    assert "put" in paths["/api/v1/communities/{group_id}/activities/{code}"]


def test_any_text_is_stored_as_sent(api, group, members):
    texts = ['a "quoted", {braces} \\ back\\slash', "line\nbreak\ttab", "NULL", "", "😀 退款 ,,}{", "x" * 10_000]
    items = [message(f"t{i}", text, member="wx-ann") for i, text in enumerate(texts)]
    assert _post(api, _url(group), items).json()["created"] == len(texts)
    stored = dict(GroupMessage.objects.values_list("external_id", "text"))
    assert [stored[f"t{i}"] for i in range(len(texts))] == texts
    assert GroupMessage.objects.get(external_id="t0").sent_at == AT


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "messages/batch", {"items": [message("m1", "x", member="wx-ann")]}),
        ("post", "checkins/batch", {"items": [{"member": "wx-ann", "at": AT.isoformat()}]}),
        ("post", "activities/run-5k/signups/batch", {"items": [{"member": "wx-ann", "at": AT.isoformat()}]}),
        ("put", "activities/run-5k", {"title": "5 公里", "starts_at": AT.isoformat()}),
    ],
    ids=["messages", "checkins", "signups", "activity"],
)
def test_every_endpoint_hides_a_group_from_a_second_managers_session(
    make_user, owner, group, members, method, path, body
):
    Activity.objects.create(group=group, code="run-5k", title="5 公里", starts_at=AT)
    client = APIClient()
    second = make_user("community_manager", "mgr-two")
    client.force_login(second)
    r = getattr(client, method)(f"/api/v1/communities/{group.pk}/{path}", body, format="json")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_group"
    # Given the group to post SOP content only: they see it, but may not push bot data.
    group_services.staff_grant(group=group, user=second, actor=owner, can_post=True)
    r = getattr(client, method)(f"/api/v1/communities/{group.pk}/{path}", body, format="json")
    assert r.status_code == 403 and r.json()["error"]["code"] == "permission_denied"
    client.force_login(make_user("operator", "op"))  # sees the group, may not write to it
    assert getattr(client, method)(f"/api/v1/communities/{group.pk}/{path}", body, format="json").status_code == 403
    assert not GroupMessage.objects.exists() and not CheckIn.objects.exists()
    assert not ActivitySignup.objects.exists() and Activity.objects.get().title == "5 公里"


def test_an_activity_code_that_is_no_slug_is_refused_in_the_error_shape(make_user):
    from communities.services.ingest import activity_upsert
    from core.errors import ApplicationError

    group = group_make(make_user("community_manager", "mgr-slug"), code="g-slug")
    for bad in ["x" * 65, "带空格 的", "a/b", ""]:
        with pytest.raises(ApplicationError) as caught:
            activity_upsert(group=group, code=bad, title="t", starts_at=AT, ends_at=None)
        assert caught.value.code == "invalid_activity_code"
    assert not Activity.objects.exists()

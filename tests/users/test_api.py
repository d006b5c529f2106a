"""REST API v1 for customers, orders and events, against the contract in SPEC.md."""

import json
import math
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from core.services import api_key_create, api_key_revoke
from users.models import Customer, CustomerTag, Event, Order

from .factories import CustomerFactory

pytestmark = pytest.mark.django_db

CUSTOMERS = "/api/v1/customers/batch"
ORDERS = "/api/v1/orders/batch"
EVENTS = "/api/v1/events/batch"
LIST = "/api/v1/customers/"
WHEN = "2026-05-01T10:00:00+08:00"


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert list(body) == ["error"]
    assert set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]


def post(client, url, items, **envelope):
    return client.post(url, {"items": items, **envelope}, format="json")


def order(ext="o1", customer="c1", amount="10.00", **extra):
    return {"external_id": ext, "customer": customer, "amount": amount, "occurred_at": WHEN, **extra}


def only_error(response, index: int) -> dict:
    assert response.status_code == 200, response.content
    errors = response.json()["errors"]
    assert [e["index"] for e in errors] == [index], errors
    return errors[0]


# --- envelope --------------------------------------------------------------


def test_malformed_json_is_400(api):
    response = api.post(CUSTOMERS, data='{"items": [', content_type="application/json")
    assert_error(response, 400, "malformed_request")


@pytest.mark.parametrize("body", [[], "items", 3, None])
def test_body_not_an_object_is_400(api, body):
    response = api.post(CUSTOMERS, data=json.dumps(body), content_type="application/json")
    assert_error(response, 400, "malformed_request")


def test_items_not_a_list_is_400(api):
    assert_error(api.post(CUSTOMERS, {"items": {"external_id": "c1"}}, format="json"), 400, "malformed_request")


def test_unknown_envelope_key_is_400(api):
    error = assert_error(post(api, CUSTOMERS, [], atomc=True), 400, "malformed_request")
    assert error["details"] == {"fields": ["atomc"]}


def test_atomic_must_be_a_boolean(api):
    assert_error(post(api, CUSTOMERS, [], atomic="yes"), 400, "malformed_request")


def test_more_than_1000_items_is_400(api):
    items = [{"external_id": f"c{i}"} for i in range(1001)]
    error = assert_error(post(api, CUSTOMERS, items), 400, "batch_too_large")
    assert error["details"] == {"max_items": 1000, "items": 1001}
    assert Customer.objects.count() == 0


def test_exactly_1000_items_is_accepted(api):
    response = post(api, CUSTOMERS, [{"external_id": f"c{i}"} for i in range(1000)])
    assert response.status_code == 200
    assert response.json()["created"] == 1000


# --- row errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"external_id": 123}, "external_id"),
        ({"external_id": "c1", "name": ["x"]}, "name"),
        ({"external_id": "c1", "do_not_contact": "maybe"}, "do_not_contact"),
        ({"external_id": "c1", "consent": {"sms": "maybe"}}, "consent.sms"),
        ({"external_id": "c1", "tags": "vip"}, "tags"),
        ({"external_id": "c1", "birthday": "yesterday"}, "birthday"),
        ({"external_id": "c1", "gender": "robot"}, "gender"),
        ({"external_id": "c1", "name": "x" * 101}, "name"),
        ({"external_id": "c" * 65}, "external_id"),
        ({"external_id": "c1", "favourite_colour": "red"}, "favourite_colour"),
        ({"external_id": "c1", "timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"external_id": "c1", "phone": "call me"}, "phone"),
        ({"external_id": "c1", "email": "not-an-email"}, "email"),
        ({"external_id": "c1", "signup_at": "2026-05-01T10:00:00"}, "signup_at"),
    ],
)
def test_bad_customer_row_is_reported_by_index_and_field(api, row, field):
    response = post(api, CUSTOMERS, [{"external_id": "good"}, row])
    error = only_error(response, 1)
    assert error["field"] == field
    assert error["message"]
    assert response.json()["created"] == 1
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["good"]


def test_items_that_are_not_objects_are_row_errors(api):
    error = only_error(post(api, CUSTOMERS, [{"external_id": "c1"}, 7]), 1)
    assert error["field"] == "item"


def test_same_external_id_twice_in_one_batch(api):
    response = post(api, CUSTOMERS, [{"external_id": "c1", "name": "A"}, {"external_id": "c1", "name": "B"}])
    error = only_error(response, 1)
    assert error["field"] == "external_id" and "Duplicate" in error["message"]
    assert Customer.objects.get().name == "A"


def test_same_order_external_id_twice_in_one_batch(api):
    CustomerFactory(external_id="c1")
    error = only_error(post(api, ORDERS, [order("o1"), order("o1", amount="2")]), 1)
    assert error["field"] == "external_id"
    assert Order.objects.get().amount == Decimal("10.00")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "-1.00"}, "amount"),
        ({"amount": "1000000.01"}, "amount"),
        ({"amount": "10.001"}, "amount"),
        ({"amount": "ten"}, "amount"),
        ({"currency": "USD"}, "currency"),
        ({"currency": "cny"}, "currency"),
        ({"status": "lost"}, "status"),
        ({"occurred_at": "2026-05-01T10:00:00"}, "occurred_at"),
        ({"occurred_at": "not a date"}, "occurred_at"),
        ({"note": "x"}, "note"),
        ({"external_id": "o" * 65}, "external_id"),
    ],
)
def test_bad_order_row_is_reported(api, change, field):
    CustomerFactory(external_id="c1")
    response = post(api, ORDERS, [order("good"), {**order("bad"), **change}])
    error = only_error(response, 1)
    assert error["field"] == field
    assert list(Order.objects.values_list("external_id", flat=True)) == ["good"]


def test_absurd_amount_uses_the_setting(api, settings):
    settings.OPS_MAX_ORDER_AMOUNT = Decimal("500")
    CustomerFactory(external_id="c1")
    error = only_error(post(api, ORDERS, [order("o1", amount="499.99"), order("o2", amount="500.01")]), 1)
    assert error["field"] == "amount" and "500" in error["message"]


def test_unknown_customer_for_an_order_is_a_row_error(api):
    CustomerFactory(external_id="c1")
    response = post(api, ORDERS, [order("o1"), order("o2", customer="ghost")])
    error = only_error(response, 1)
    assert error["field"] == "customer" and "ghost" in error["message"]
    assert response.json()["created"] == 1


def test_unknown_customer_for_an_event_is_a_row_error(api):
    CustomerFactory(external_id="c1")
    events = [
        {"customer": "c1", "type": "login", "occurred_at": WHEN},
        {"customer": "ghost", "type": "login", "occurred_at": WHEN},
    ]
    error = only_error(post(api, EVENTS, events), 1)
    assert error["field"] == "customer"
    assert Event.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "Login!"}, "type"),
        ({"occurred_at": "2026-05-01"}, "occurred_at"),
        ({"properties": {"blob": "x" * 9000}}, "properties"),
        ({"properties": [1]}, "properties"),
    ],
)
def test_bad_event_row_is_reported(api, change, field):
    CustomerFactory(external_id="c1")
    event = {"customer": "c1", "type": "login", "occurred_at": WHEN}
    error = only_error(post(api, EVENTS, [event, {**event, **change}]), 1)
    assert error["field"] == field


# --- atomic ---------------------------------------------------------------


def _counts():
    return Customer.objects.count(), Order.objects.count(), Event.objects.count(), CustomerTag.objects.count()


def test_atomic_customers_with_one_bad_row_writes_nothing(api):
    before = _counts()
    items = [{"external_id": "c1", "tags": ["vip"]}, {"external_id": "c2", "email": "nope"}]
    error = assert_error(post(api, CUSTOMERS, items, atomic=True), 422, "batch_rejected")
    assert error["details"]["errors"] == [
        {"index": 1, "field": "email", "message": error["details"]["errors"][0]["message"]}
    ]
    assert _counts() == before


def test_atomic_orders_with_an_unknown_customer_writes_nothing(api):
    CustomerFactory(external_id="c1")
    before = _counts()
    response = post(api, ORDERS, [order("o1"), order("o2", customer="ghost")], atomic=True)
    error = assert_error(response, 422, "batch_rejected")
    assert [e["index"] for e in error["details"]["errors"]] == [1]
    assert _counts() == before


def test_atomic_events_with_one_bad_row_writes_nothing(api):
    CustomerFactory(external_id="c1")
    before = _counts()
    events = [{"customer": "c1", "type": "login", "occurred_at": WHEN}, {"customer": "c1", "type": "login"}]
    assert_error(post(api, EVENTS, events, atomic=True), 422, "batch_rejected")
    assert _counts() == before


def test_atomic_referral_error_writes_nothing(api):
    before = _counts()
    items = [{"external_id": "c1"}, {"external_id": "c2", "referred_by": "ghost"}]
    assert_error(post(api, CUSTOMERS, items, atomic=True), 422, "batch_rejected")
    assert _counts() == before


def test_non_atomic_keeps_good_rows_and_reports_bad_ones_by_index(api):
    CustomerFactory(external_id="c1")
    items = [order("o1"), order("o2", amount="-5"), order("o3"), order("o4", currency="EUR"), order("o5")]
    body = post(api, ORDERS, items, atomic=False).json()
    assert body["created"] == 3 and body["updated"] == 0 and body["unchanged"] == 0
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "amount"), (3, "currency")]
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["o1", "o3", "o5"]


def test_atomic_with_good_rows_writes_them(api):
    response = post(api, CUSTOMERS, [{"external_id": "c1"}, {"external_id": "c2"}], atomic=True)
    assert response.json() == {"created": 2, "updated": 0, "unchanged": 0, "errors": []}


# --- idempotency and upserts ------------------------------------------------------


CUSTOMER_ITEMS = [
    {"external_id": "c0", "name": "推荐人"},
    {
        "external_id": "c1",
        "name": " 张伟 ",
        "nickname": "伟",
        "phone": "+86 138-1234-1633",
        "email": "Zhang@Example.com",
        "gender": "male",
        "birthday": "1990-05-01",
        "city": "上海",
        "timezone": "Asia/Shanghai",
        "signup_at": "2026-01-01T08:00:00+08:00",
        "channel": "wechat_ad",
        "referred_by": "c0",
        "tags": ["vip", "new", "vip"],
        "consent": {"sms": True, "push": False},
        "do_not_contact": False,
    },
]


def _stamps():
    return dict(Customer.objects.values_list("external_id", "updated_at"))


def test_customer_batch_replay_changes_nothing(api):
    first = post(api, CUSTOMERS, CUSTOMER_ITEMS).json()
    assert first == {"created": 2, "updated": 0, "unchanged": 0, "errors": []}
    stamps, counts = _stamps(), _counts()
    again = post(api, CUSTOMERS, CUSTOMER_ITEMS).json()
    assert again == {"created": 0, "updated": 0, "unchanged": 2, "errors": []}
    assert _stamps() == stamps
    assert _counts() == counts
    c1 = Customer.objects.get(external_id="c1")
    assert c1.name == "张伟" and c1.email == "zhang@example.com" and c1.referred_by.external_id == "c0"


def test_order_batch_replay_changes_nothing(api):
    CustomerFactory(external_id="c1")
    items = [order("o1", amount="10.5"), order("o2", status="refunded")]
    assert post(api, ORDERS, items).json() == {"created": 2, "updated": 0, "unchanged": 0, "errors": []}
    stamps = dict(Order.objects.values_list("external_id", "updated_at"))
    # The same instant written with another offset is the same order.
    items[0]["occurred_at"] = "2026-05-01T02:00:00Z"
    assert post(api, ORDERS, items).json() == {"created": 0, "updated": 0, "unchanged": 2, "errors": []}
    assert dict(Order.objects.values_list("external_id", "updated_at")) == stamps
    assert Order.objects.count() == 2


def test_event_batch_replay_changes_nothing(api):
    CustomerFactory(external_id="c1")
    events = [
        {"customer": "c1", "type": "login", "occurred_at": WHEN, "external_id": "e1"},
        {"customer": "c1", "type": "page_view", "occurred_at": WHEN, "properties": {"path": "/"}},
    ]
    assert post(api, EVENTS, events).json() == {"created": 2, "updated": 0, "unchanged": 0, "errors": []}
    assert post(api, EVENTS, events).json() == {"created": 0, "updated": 0, "unchanged": 2, "errors": []}
    assert Event.objects.count() == 2


def test_events_without_external_id_deduplicate_by_content(api):
    CustomerFactory(external_id="c1")
    event = {"customer": "c1", "type": "page_view", "occurred_at": WHEN, "properties": {"path": "/a", "n": 1}}
    assert post(api, EVENTS, [event]).json()["created"] == 1
    same_instant = {**event, "occurred_at": "2026-05-01T02:00:00Z", "properties": {"n": 1, "path": "/a"}}
    assert post(api, EVENTS, [same_instant, event]).json() == {"created": 0, "updated": 0, "unchanged": 2, "errors": []}
    other = {**event, "properties": {"path": "/b", "n": 1}}
    assert post(api, EVENTS, [other]).json()["created"] == 1
    assert Event.objects.count() == 2


def test_partial_customer_upsert_keeps_unsent_fields(api):
    post(api, CUSTOMERS, CUSTOMER_ITEMS)
    response = post(api, CUSTOMERS, [{"external_id": "c1", "city": "北京", "consent": {"email": True}}])
    assert response.json() == {"created": 0, "updated": 1, "unchanged": 0, "errors": []}
    c1 = Customer.objects.get(external_id="c1")
    assert c1.city == "北京"
    assert (c1.name, c1.phone, c1.gender, c1.timezone, c1.channel) == (
        "张伟",
        "+86 138-1234-1633",
        "male",
        "Asia/Shanghai",
        "wechat_ad",
    )
    assert (c1.consent_sms, c1.consent_push, c1.consent_email) == (True, False, True)
    assert c1.referred_by.external_id == "c0"
    assert sorted(c1.tags.values_list("tag", flat=True)) == ["new", "vip"]


def test_tag_only_change_counts_as_updated_and_moves_updated_at(api):
    post(api, CUSTOMERS, [{"external_id": "c1", "tags": ["a"]}])
    Customer.objects.update(updated_at=timezone.now() - timedelta(days=1))
    before = Customer.objects.get().updated_at
    response = post(api, CUSTOMERS, [{"external_id": "c1", "tags": ["b"]}])
    assert response.json()["updated"] == 1
    assert list(CustomerTag.objects.values_list("tag", flat=True)) == ["b"]
    assert Customer.objects.get().updated_at > before


def test_order_status_paid_to_refunded_counts_as_updated(api):
    CustomerFactory(external_id="c1")
    post(api, ORDERS, [order("o1")])
    response = post(api, ORDERS, [order("o1", status="refunded")])
    assert response.json() == {"created": 0, "updated": 1, "unchanged": 0, "errors": []}
    assert Order.objects.get().status == "refunded"


def test_referrer_later_in_the_same_batch(api):
    items = [{"external_id": "c2", "referred_by": "c1"}, {"external_id": "c1"}]
    assert post(api, CUSTOMERS, items).json() == {"created": 2, "updated": 0, "unchanged": 0, "errors": []}
    assert Customer.objects.get(external_id="c2").referred_by.external_id == "c1"


def test_unknown_referrer_and_self_referral_are_row_errors(api):
    items = [
        {"external_id": "c1", "referred_by": "ghost"},
        {"external_id": "c2", "referred_by": "c2"},
        {"external_id": "c3"},
    ]
    body = post(api, CUSTOMERS, items).json()
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(0, "referred_by"), (1, "referred_by")]
    assert body["created"] == 1
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["c3"]


# --- unsubscribe ----------------------------------------------------------------------


def test_unsubscribe_one_channel(api):
    CustomerFactory(external_id="c1", consent_sms=True, consent_email=True)
    response = api.post("/api/v1/customers/c1/unsubscribe", {"channel": "sms"}, format="json")
    assert response.status_code == 200
    assert response.json()["consent"]["sms"] is False and response.json()["consent"]["email"] is True
    customer = Customer.objects.get()
    assert (customer.consent_sms, customer.consent_email) == (False, True)


def test_unsubscribe_all(api):
    CustomerFactory(external_id="c1", consent_sms=True, consent_email=True, consent_push=True, consent_wechat=True)
    response = api.post("/api/v1/customers/c1/unsubscribe", {"channel": "all"}, format="json")
    assert response.status_code == 200
    assert not any(response.json()["consent"].values())
    assert not any(Customer.objects.get().consent().values())


def test_unsubscribe_bad_channel_is_400(api):
    CustomerFactory(external_id="c1")
    error = assert_error(api.post("/api/v1/customers/c1/unsubscribe", {"channel": "fax"}, format="json"), 400)
    assert error["details"]["errors"][0]["field"] == "channel"
    assert Customer.objects.get().consent_sms is True


def test_unsubscribe_unknown_customer_is_404(api):
    assert_error(api.post("/api/v1/customers/ghost/unsubscribe", {"channel": "sms"}, format="json"), 404, "not_found")


# --- PII, scopes, sessions ---------------------------------------------------------------


def test_pii_is_masked_without_the_pii_scope(make_api):
    CustomerFactory(external_id="c1", phone="13812341633", email="zhang.wei@example.com")
    client = make_api(["customers:read"])
    profile = client.get("/api/v1/customers/c1").json()
    assert (profile["phone"], profile["email"]) == ("138****1633", "z***@example.com")
    [item] = client.get(LIST).json()["results"]
    assert (item["phone"], item["email"]) == ("138****1633", "z***@example.com")


def test_pii_is_shown_with_the_pii_scope(make_api):
    CustomerFactory(external_id="c1", phone="13812341633", email="zhang.wei@example.com")
    profile = make_api(["customers:read", "customers:pii"]).get("/api/v1/customers/c1").json()
    assert (profile["phone"], profile["email"]) == ("13812341633", "zhang.wei@example.com")


def _session(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_operator_session_can_list_customers(make_user):
    CustomerFactory(phone="13812341633")
    response = _session(make_user("operator")).get(LIST)
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


def test_viewer_session_sees_masked_pii(make_user):
    CustomerFactory(external_id="c1", phone="13812341633", email="zhang.wei@example.com")
    client = _session(make_user("viewer"))
    [item] = client.get(LIST).json()["results"]
    assert item["phone"] == "138****1633"
    assert client.get("/api/v1/customers/c1").json()["email"] == "z***@example.com"


def test_admin_session_sees_pii(make_user):
    CustomerFactory(external_id="c1", phone="13812341633")
    assert _session(make_user("admin")).get("/api/v1/customers/c1").json()["phone"] == "13812341633"


def test_viewer_session_cannot_write(make_user):
    response = _session(make_user("viewer")).post(CUSTOMERS, {"items": []}, format="json")
    assert_error(response, 403, "permission_denied")


def test_session_user_without_a_role_is_403(make_user):
    assert_error(_session(make_user(None)).get(LIST), 403, "permission_denied")


@pytest.mark.parametrize(
    ("scopes", "method", "url"),
    [
        (["customers:write"], "get", LIST),
        (["customers:write"], "get", "/api/v1/customers/c1"),
        (["customers:read"], "post", CUSTOMERS),
        (["customers:read", "customers:pii"], "post", ORDERS),
        (["segments:read"], "post", EVENTS),
        (["customers:read"], "post", "/api/v1/customers/c1/unsubscribe"),
    ],
)
def test_key_without_the_scope_is_403(make_api, scopes, method, url):
    CustomerFactory(external_id="c1")
    client = make_api(scopes)
    response = getattr(client, method)(url, {"items": []} if method == "post" else None, format="json")
    assert_error(response, 403, "permission_denied")


# --- authentication -----------------------------------------------------------------


def _with_header(value: str | None) -> APIClient:
    client = APIClient()
    if value is not None:
        client.credentials(HTTP_AUTHORIZATION=value)
    return client


def _assert_401(response, code: str):
    assert_error(response, 401, code)
    assert response["WWW-Authenticate"] == "Bearer"


def test_missing_key_is_401(db):
    _assert_401(_with_header(None).get(LIST), "not_authenticated")


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer a b", "Bearer not-a-key", "Bearer opsk_only", "Bearer xxxx_abc_def"]
)
def test_malformed_header_is_401(db, header):
    _assert_401(_with_header(header).get(LIST), "authentication_failed")


@pytest.mark.parametrize("header", ["   ", "Basic dXNlcjpwYXNz"])
def test_other_or_blank_schemes_are_401(db, header):
    _assert_401(_with_header(header).get(LIST), "not_authenticated")


def test_wrong_secret_is_401(api_key):
    tag, prefix, _secret = api_key.full.split("_", 2)
    _assert_401(_with_header(f"Bearer {tag}_{prefix}_wrongsecret").get(LIST), "authentication_failed")


def test_revoked_key_is_401(api, api_key):
    assert api.get(LIST).status_code == 200
    api_key_revoke(key=api_key)
    _assert_401(api.get(LIST), "authentication_failed")


def test_expired_key_is_401(db):
    _key, full = api_key_create(name="old", scopes=["customers:read"], expires_at=timezone.now() - timedelta(seconds=1))
    _assert_401(_with_header(f"Bearer {full}").get(LIST), "authentication_failed")


def test_per_key_throttling(db):
    _key, full = api_key_create(name="slow", scopes=["customers:read"], rate_limit="2/min")
    client = _with_header(f"Bearer {full}")
    assert client.get(LIST).status_code == 200
    assert client.get(LIST).status_code == 200
    response = client.get(LIST)
    error = assert_error(response, 429, "throttled")
    assert error["details"]["retry_after_seconds"] > 0
    assert int(response["Retry-After"]) > 0
    # Another key is not slowed down by this one.
    _other, other_full = api_key_create(name="fast", scopes=["customers:read"])
    assert _with_header(f"Bearer {other_full}").get(LIST).status_code == 200


# --- performance ------------------------------------------------------------------------------


def _split_statements(n: int, model, fields: list[str] | None = None) -> int:
    """How many statements the backend needs for one bulk insert of ``n`` rows.

    PostgreSQL takes the whole batch in one; SQLite (Django 5.2) caps a statement
    at 999 parameters, so there the count grows with the batch, by this much only."""
    names = fields or [f.name for f in model._meta.concrete_fields if not f.primary_key]
    per_statement = connection.ops.bulk_batch_size([model._meta.get_field(f) for f in names], [None] * n)
    return math.ceil(n / per_statement)


def _orders_batch_queries(api, django_assert_max_num_queries, n: int, prefix: str, limit: int) -> tuple[int, int]:
    customers = [{"external_id": f"{prefix}c{i}"} for i in range(min(n, 50))]
    post(api, CUSTOMERS, customers)
    items = [order(f"{prefix}o{i}", customer=f"{prefix}c{i % len(customers)}") for i in range(n)]
    with django_assert_max_num_queries(limit) as captured:
        response = post(api, ORDERS, items)
    assert response.json()["created"] == n
    # A replay reads and compares, and writes nothing.
    with django_assert_max_num_queries(limit) as replay:
        assert post(api, ORDERS, items).json()["unchanged"] == n
    return len(captured.captured_queries), len(replay.captured_queries)


def test_orders_batch_query_count_does_not_grow_with_the_batch(api, django_assert_max_num_queries):
    api.get(LIST)  # the key's last_used_at is written once a minute: not part of what is measured
    extra = _split_statements(1000, Order) - 1  # 0 on PostgreSQL
    small = _orders_batch_queries(api, django_assert_max_num_queries, 10, "s", limit=12)
    large = _orders_batch_queries(api, django_assert_max_num_queries, 1000, "l", limit=12 + extra)
    assert large == (small[0] + extra, small[1])


@pytest.mark.postgres
def test_customers_batch_query_count_does_not_grow_with_the_batch(api, django_assert_max_num_queries):
    api.get(LIST)  # the key's last_used_at is written once a minute: not part of what is measured

    def run(n, prefix):
        items = [
            {"external_id": f"{prefix}{i}", "tags": ["a", "b"], "referred_by": f"{prefix}0" if i else None}
            for i in range(n)
        ]
        with django_assert_max_num_queries(15) as captured:
            assert post(api, CUSTOMERS, items).json()["created"] == n
        with django_assert_max_num_queries(15) as replay:
            assert post(api, CUSTOMERS, items).json()["unchanged"] == n
        return len(captured.captured_queries), len(replay.captured_queries)

    assert run(1000, "l") == run(10, "s")


# --- OpenAPI --------------------------------------------------------------------------


def test_schema_lists_the_batch_paths(client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path in [
        "/api/v1/customers/batch",
        "/api/v1/orders/batch",
        "/api/v1/events/batch",
        "/api/v1/customers/",
        "/api/v1/customers/{external_id}",
        "/api/v1/customers/{external_id}/unsubscribe",
    ]:
        assert path in schema["paths"], path
    assert "post" in schema["paths"]["/api/v1/orders/batch"]
    points_batch = schema["paths"]["/api/v1/points/entries/batch"]["post"]
    assert "requestBody" in points_batch and points_batch["security"]


def test_schema_is_valid_openapi_without_warnings(db, tmp_path):
    from django.core.management import call_command

    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert "/api/v1/points/entries/batch" in out.read_text() and "openapi: 3.1.0" in out.read_text()


def test_docs_render_without_assets_from_another_site(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger" in html.lower()
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert assets
    assert [a for a in assets if re.match(r"^(https?:)?//", a)] == []
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html

"""Hostile input through every interface that writes or filters customers, orders,
events and points: the API batches and bodies, the file import, the admin forms,
query parameters, operator pages (issue 9, classes 1, 4 and 5 and strictness).
Each case is generated; each answers a clear error, keeps the good rows of a
non-atomic batch, and leaves every later read of the customer working."""

import csv
import io
import itertools
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incentives.models import PointsEntry
from tests.core.test_hostile_parsing import hostile_text, out_of_range_instants, properties_with_hostile_text
from tests.incentives.factories import seed_defaults
from users.models import Customer, Event, Order

from .factories import CustomerFactory

pytestmark = pytest.mark.django_db

CUSTOMERS = "/api/v1/customers/batch"
ORDERS = "/api/v1/orders/batch"
EVENTS = "/api/v1/events/batch"
POINTS = "/api/v1/points/entries"
POINTS_BATCH = "/api/v1/points/entries/batch"
WHEN = "2026-05-01T10:00:00+08:00"

# Hypothesis runs many examples inside one test's transaction: ids never repeat.
_ids = itertools.count()
db_settings = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


def uid(prefix: str) -> str:
    return f"{prefix}{next(_ids)}"


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert list(body) == ["error"] and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    return body["error"]


def post_json(api, url, body):
    """Posts ``body`` as JSON with \\u escapes, the way a client sends an unpaired surrogate."""
    return api.post(url, data=json.dumps(body), content_type="application/json")


def batch(api, url, items):
    response = post_json(api, url, {"items": items})
    assert response.status_code == 200, response.content[:300]
    return response.json()


def assert_reads_work(api, external_id: str) -> None:
    for url in (f"/api/v1/customers/{external_id}", f"/api/v1/customers/{external_id}/points", "/api/v1/customers/"):
        assert api.get(url).status_code == 200, url


@pytest.fixture(autouse=True)
def _defaults():
    seed_defaults()


# --- class 1: instants out of range --------------------------------------------------------


@given(value=out_of_range_instants())
@db_settings
def test_an_out_of_range_signup_is_a_row_error_and_the_good_row_is_kept(api, value):
    bad, good = uid("c"), uid("c")
    body = batch(api, CUSTOMERS, [{"external_id": bad, "signup_at": value}, {"external_id": good, "signup_at": WHEN}])
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(0, "signup_at")]
    assert body["created"] == 1
    assert not Customer.objects.filter(external_id=bad).exists()
    assert_reads_work(api, good)


@given(value=out_of_range_instants(), endpoint=st.sampled_from(["orders", "events"]))
@db_settings
def test_an_out_of_range_order_or_event_instant_is_a_row_error(api, value, endpoint):
    customer = CustomerFactory(external_id=uid("c"))
    if endpoint == "orders":
        items = [
            {"external_id": uid("o"), "customer": customer.external_id, "amount": "5", "occurred_at": value},
            {"external_id": uid("o"), "customer": customer.external_id, "amount": "5", "occurred_at": WHEN},
        ]
        stored = Order.objects.filter(customer=customer)
    else:
        items = [
            {"customer": customer.external_id, "type": "visit", "occurred_at": value},
            {"customer": customer.external_id, "type": "visit", "occurred_at": WHEN},
        ]
        stored = Event.objects.filter(customer=customer)
    body = batch(api, f"/api/v1/{endpoint}/batch", items)
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(0, "occurred_at")]
    assert stored.count() == 1
    assert_reads_work(api, customer.external_id)


@given(value=out_of_range_instants())
@db_settings
def test_an_out_of_range_updated_since_is_an_invalid_filter(api, value):
    error = assert_error(api.get("/api/v1/customers/", {"updated_since": value}), 400, "invalid_filter")
    assert "updated_since" in error["details"]


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59Z"])
def test_edge_instants_of_the_issue_are_refused_in_the_file_import(make_user, value):
    client = Client()
    client.force_login(make_user("admin"))
    out = io.StringIO()
    csv.writer(out).writerows([["external_id", "signup_at"], ["imp-1", value], ["imp-2", WHEN]])
    upload = SimpleUploadedFile("c.csv", out.getvalue().encode())
    preview = client.post("/admin/users/customer/import/", {"import_file": upload, "format": "0", "resource": "0"})
    assert preview.status_code == 200
    invalid = preview.context["result"].invalid_rows
    assert [row.number for row in invalid] == [1]
    assert "signup_at" in invalid[0].error_dict
    assert not Customer.objects.filter(external_id__startswith="imp-").exists()


@pytest.mark.parametrize(
    ("day", "time"), [("0001-01-01", "00:00:00"), ("9999-12-31", "23:59:59"), ("2100-01-02", "00:00:00")]
)
def test_an_out_of_range_instant_in_the_admin_customer_form_is_a_form_error(make_user, day, time):
    client = Client()
    client.force_login(make_user("admin"))
    data = {
        "external_id": "adm-1",
        "gender": "unknown",
        "signup_at_0": day,
        "signup_at_1": time,
        "tags-TOTAL_FORMS": "0",
        "tags-INITIAL_FORMS": "0",
        "tags-MIN_NUM_FORMS": "0",
        "tags-MAX_NUM_FORMS": "1000",
    }
    response = client.post("/admin/users/customer/add/", data)
    assert response.status_code == 200
    assert "signup_at" in response.context["adminform"].form.errors
    assert not Customer.objects.filter(external_id="adm-1").exists()


@pytest.mark.parametrize(
    "params", [{"start": "0001-01-01", "end": "0001-01-02"}, {"start": "9999-12-30", "end": "9999-12-31"}]
)
def test_an_out_of_range_leaderboard_period_is_a_form_error(make_user, params):
    client = Client()
    client.force_login(make_user("viewer"))
    response = client.get(reverse("incentives:home"), params, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert response.context["boards"] is None
    assert response.context["form"].errors


@pytest.mark.parametrize(
    "params", [{"start": "0001-01-01", "end": "0001-01-02"}, {"start": "2026-01-01", "end": "9999-12-31"}]
)
def test_an_out_of_range_transition_period_is_a_form_error(make_user, params):
    client = Client()
    client.force_login(make_user("viewer"))
    for extra in ({}, {"format": "csv"}):
        response = client.get(reverse("segments:transitions"), {**params, **extra}, HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 200  # the page re-renders with the form's errors
        assert response.context["form"].errors


# --- class 4: NUL and unpaired surrogates ----------------------------------------------------


@given(field=st.sampled_from(["name", "nickname", "city", "channel", "tags"]), value=hostile_text())
@db_settings
def test_hostile_text_in_a_customer_is_a_row_error_and_the_good_row_is_kept(api, field, value):
    bad, good = uid("c"), uid("c")
    item = {"external_id": bad, field: [value] if field == "tags" else value}
    body = batch(api, CUSTOMERS, [item, {"external_id": good, "name": "ok"}])
    assert [e["index"] for e in body["errors"]] == [0] and body["errors"][0]["field"].startswith(field)
    assert body["created"] == 1 and not Customer.objects.filter(external_id=bad).exists()
    assert_reads_work(api, good)


@given(props=properties_with_hostile_text())
@db_settings
def test_hostile_text_in_event_properties_is_a_row_error_and_the_good_row_is_kept(api, props):
    customer = CustomerFactory(external_id=uid("c"))
    items = [
        {"customer": customer.external_id, "type": "visit", "occurred_at": WHEN, "properties": props},
        {"customer": customer.external_id, "type": "visit", "occurred_at": WHEN, "properties": {"ok": 1}},
    ]
    body = batch(api, EVENTS, items)
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(0, "properties")]
    assert Event.objects.filter(customer=customer).count() == 1


@given(reason=hostile_text())
@db_settings
def test_hostile_text_in_a_points_reason_is_refused_single_and_in_a_batch(api, reason):
    customer = CustomerFactory(external_id=uid("c"))
    entry = {"customer": customer.external_id, "kind": "earn", "amount": 5, "idempotency_key": uid("k")}
    assert_error(post_json(api, POINTS, {**entry, "reason": reason}), 400, "invalid")
    body = post_json(
        api,
        POINTS_BATCH,
        {"items": [{**entry, "reason": reason}, {**entry, "reason": "fine", "idempotency_key": uid("k")}]},
    ).json()
    assert [e["index"] for e in body["errors"]] == [0] and len(body["entries"]) == 1
    assert PointsEntry.objects.filter(customer=customer).count() == 1


def test_a_surrogate_sent_as_raw_json_escapes_is_a_row_error(api):
    customer = CustomerFactory(external_id="sur-1")
    item = '{"customer": "sur-1", "type": "visit", "occurred_at": "' + WHEN + '"'
    raw = (
        '{"items": ['
        + item
        + ', "properties": {"k": "\\udc00"}}, '
        + item
        + ', "properties": {"\\u0000": 1}}, '
        + item
        + "}]}"
    )
    response = api.post(EVENTS, data=raw, content_type="application/json")
    assert response.status_code == 200, response.content
    assert [e["index"] for e in response.json()["errors"]] == [0, 1]
    assert Event.objects.filter(customer=customer).count() == 1


@given(
    char=st.sampled_from(["%00", "%C0%80", "%ED%B2%80"]),
    where=st.sampled_from(["path", "query", "key"]),
    url=st.sampled_from(["/api/v1/customers/", "/api/v1/segments/"]),
)
@db_settings
def test_a_nul_in_an_api_path_or_query_is_a_400_in_the_error_shape(api, char, where, url):
    target = {"path": f"{url}a{char}b", "query": f"{url}?tag=a{char}", "key": f"{url}?a{char}=1"}[where]
    response = api.get(target)
    if char == "%00":
        assert_error(response, 400, "malformed_request")
    else:  # invalid UTF-8 is replaced while decoding: never a 500
        assert response.status_code < 500


@pytest.mark.parametrize("url", ["/customers/?q=%00", "/customers/a%00b/", "/points/?start=%00", "/segments/a%00/"])
def test_a_nul_in_an_operator_page_url_is_a_400(make_user, url):
    client = Client()
    client.force_login(make_user("admin"))
    assert client.get(url).status_code == 400


@given(value=hostile_text(), where=st.sampled_from(["value", "field"]))
@db_settings
def test_hostile_text_in_a_segment_definition_is_a_400_on_preview_and_a_form_error_on_save(
    client, make_user, value, where
):
    client.force_login(make_user("operator", username=uid("op")))
    condition = (
        {"field": "city", "op": "eq", "value": value} if where == "value" else {"field": value, "op": "eq", "value": 1}
    )
    definition = json.dumps({"op": "and", "conditions": [condition]})  # \\u escapes, as a browser sends them
    preview = client.post(reverse("segments:preview"), data=definition, content_type="application/json")
    assert preview.status_code == 400 and preview.json()["error"]["code"] == "invalid_json"
    saved = client.post(reverse("segments:create"), {"name": uid("seg"), "definition": definition})
    assert saved.status_code in (200, 400) and "definition" in saved.context["form"].errors


# --- class 5: deep nesting ---------------------------------------------------------------------


@given(
    url=st.sampled_from([CUSTOMERS, ORDERS, EVENTS, POINTS, POINTS_BATCH, "/api/v1/rewards/1/redeem"]),
    levels=st.sampled_from([65, 1_000, 100_000]),
    opener=st.sampled_from(["[", '{"items":']),
)
@db_settings
def test_a_deeply_nested_body_is_a_400_malformed_request(api, url, levels, opener):
    closer = "]" if opener == "[" else "}"
    raw = opener * levels + closer * levels
    assert_error(api.post(url, data=raw, content_type="application/json"), 400, "malformed_request")


def test_nesting_inside_event_properties_is_bounded_too(api):
    CustomerFactory(external_id="deep-1")
    props = {"a": json.loads("[" * 70 + "]" * 70)}
    raw = json.dumps({"items": [{"customer": "deep-1", "type": "visit", "occurred_at": WHEN, "properties": props}]})
    assert_error(api.post(EVENTS, data=raw, content_type="application/json"), 400, "malformed_request")


@pytest.mark.parametrize("levels", [100, 100_000])
def test_a_deeply_nested_segment_preview_or_save_is_a_400(make_user, levels):
    client = Client()
    client.force_login(make_user("operator"))
    raw = "[" * levels + "]" * levels
    preview = client.post(reverse("segments:preview"), data=raw, content_type="application/json")
    assert preview.status_code == 400 and preview.json()["error"]["code"] == "invalid_json"
    saved = client.post(reverse("segments:create"), {"name": "deep", "definition": '{"op": "and", "c": ' + raw + "}"})
    assert saved.status_code in (200, 400)
    assert "definition" in saved.context["form"].errors


@pytest.mark.parametrize(
    ("properties", "occurred_at"),
    [
        ("[" * 100_000 + "]" * 100_000, "2026-05-01"),  # nesting
        ('{"k": "a\\u0000b"}', "2026-05-01"),  # NUL in a property value
        ('{"\\udc00": 1}', "2026-05-01"),  # an unpaired surrogate in a key
        ("{}", "9999-12-31"),  # an instant out of range
    ],
    ids=["nesting", "nul", "surrogate", "instant"],
)
def test_hostile_input_in_the_admin_event_form_is_a_form_error(make_user, properties, occurred_at):
    client = Client()
    client.force_login(make_user("admin"))
    customer = CustomerFactory(external_id="adm-ev")
    data = {
        "customer": str(customer.pk),
        "type": "visit",
        "occurred_at_0": occurred_at,
        "occurred_at_1": "23:59:59",
        "properties": properties,
        "external_id": "",
    }
    response = client.post("/admin/users/event/add/", data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert not Event.objects.filter(customer=customer).exists()


# --- strictness ----------------------------------------------------------------------------------


@given(
    field=st.sampled_from(["do_not_contact", "signup_at", "birthday", "consent"]),
    value=st.one_of(st.sampled_from(["yes", "true", "1", "1700000000"]), st.integers(), st.booleans()),
)
@db_settings
def test_values_the_api_would_have_coerced_are_row_errors(api, field, value):
    if field == "do_not_contact" and isinstance(value, bool):
        value = "yes"
    if field == "consent":
        value = {"sms": "yes" if isinstance(value, bool) else value}
    bad = uid("c")
    body = batch(api, CUSTOMERS, [{"external_id": bad, field: value}])
    assert [e["index"] for e in body["errors"]] == [0], (field, value, body)
    assert not Customer.objects.filter(external_id=bad).exists()

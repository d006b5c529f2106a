"""The admin and the file import write through the API's services: the same roll-ups,
the same purchase points (paid, or reversed on a refund), the same earning rules for
events, and an audit row saying from → to. Each test runs the API path and the other
path side by side and expects the same outcome.

Queued work is captured on commit and run as the worker would (``tests.queued``)."""

import csv
import io
from decimal import Decimal

import pytest
import tablib
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from core.models import AuditEntry
from incentives.models import PointsAccount, PointsEntry
from tests.incentives.factories import seed_defaults
from users.models import Customer, CustomerTag, Event, Order
from users.resources import CustomerResource, OrderResource

from ..queued import run_queued
from .factories import CustomerFactory

pytestmark = pytest.mark.django_db

PAID_AT = "2026-05-01T10:00:00+00:00"
ORDER_HEADERS = ["external_id", "customer", "amount", "currency", "status", "occurred_at"]


@pytest.fixture(autouse=True)
def _defaults():
    seed_defaults()


@pytest.fixture
def admin_user(make_user):
    return make_user("admin")


@pytest.fixture
def admin_client(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def _balance(customer) -> int:
    account = PointsAccount.objects.filter(customer=customer).first()
    return account.balance if account else 0


def _api_order(api, capture, **fields):
    item = {
        "external_id": "o-1",
        "customer": "u1",
        "amount": "120.00",
        "status": "paid",
        "occurred_at": PAID_AT,
        **fields,
    }
    with capture(execute=False) as callbacks:
        r = api.post("/api/v1/orders/batch", {"items": [item]}, format="json")
    assert r.status_code == 200 and not r.json()["errors"], r.content
    run_queued(callbacks)


def _admin_order_post(order: Order, **changes) -> dict:
    data = {
        "external_id": order.external_id,
        "customer": str(order.customer_id),
        "amount": str(order.amount),
        "currency": order.currency,
        "status": order.status,
        "occurred_at_0": order.occurred_at.date().isoformat(),
        "occurred_at_1": order.occurred_at.strftime("%H:%M:%S"),
    }
    data.update(changes)
    return data


@pytest.mark.parametrize("path", ["api", "admin"])
def test_a_refund_reverses_the_points_and_the_roll_up_whichever_path_sets_it(
    path, api, admin_client, django_capture_on_commit_callbacks
):
    customer = CustomerFactory(external_id="u1")
    _api_order(api, django_capture_on_commit_callbacks)
    customer.refresh_from_db()
    assert (customer.paid_orders, customer.paid_amount, _balance(customer)) == (1, Decimal("120.00"), 120)

    order = Order.objects.get(external_id="o-1")
    if path == "api":
        _api_order(api, django_capture_on_commit_callbacks, status="refunded")
    else:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            r = admin_client.post(f"/admin/users/order/{order.pk}/change/", _admin_order_post(order, status="refunded"))
        assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
        run_queued(callbacks)
        entry = AuditEntry.objects.get(action="order.change", object_id=str(order.pk))
        assert entry.changes == {"status": ["paid", "refunded"]}

    customer.refresh_from_db()
    assert Order.objects.get(pk=order.pk).status == "refunded"
    assert (customer.paid_orders, customer.paid_amount, customer.last_order_at) == (0, Decimal("0"), None)
    assert _balance(customer) == 0
    assert PointsEntry.objects.filter(customer=customer).count() == 2  # the earn and its reversal


def test_an_order_added_in_the_admin_is_paid_like_an_api_order(admin_client, django_capture_on_commit_callbacks):
    customer = CustomerFactory(external_id="u1")
    data = {
        "external_id": "o-9",
        "customer": str(customer.pk),
        "amount": "35.50",
        "currency": "CNY",
        "status": "paid",
        "occurred_at_0": "2026-05-01",
        "occurred_at_1": "10:00:00",
    }
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        r = admin_client.post("/admin/users/order/add/", data)
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
    run_queued(callbacks)
    customer.refresh_from_db()
    assert (customer.paid_orders, customer.paid_amount, _balance(customer)) == (1, Decimal("35.50"), 35)
    order = Order.objects.get(external_id="o-9")
    entry = AuditEntry.objects.get(action="order.create", object_id=str(order.pk))
    assert entry.changes["amount"] == [None, "35.50"] and entry.changes["customer"] == [None, "u1"]


def test_an_invalid_order_edit_is_a_form_error_not_a_500(admin_client):
    customer = CustomerFactory(external_id="u1")
    order = Order.objects.create(
        external_id="o-1",
        customer=customer,
        amount=Decimal("10"),
        currency="CNY",
        status="paid",
        occurred_at="2026-05-01T10:00:00Z",
    )
    order.refresh_from_db()
    r = admin_client.post(f"/admin/users/order/{order.pk}/change/", _admin_order_post(order, currency="USD"))
    assert r.status_code == 200
    assert "currency" in r.context["adminform"].form.errors
    assert Order.objects.get(pk=order.pk).currency == "CNY"


@pytest.mark.parametrize("path", ["api", "admin"])
def test_events_added_in_the_admin_get_a_dedupe_key_and_pay_their_rules(
    path, api, admin_client, django_capture_on_commit_callbacks
):
    customer = CustomerFactory(external_id="u1")
    callbacks = []
    for day in (1, 2):
        with django_capture_on_commit_callbacks(execute=False) as queued:
            if path == "api":
                r = api.post(
                    "/api/v1/events/batch",
                    {"items": [{"customer": "u1", "type": "checkin", "occurred_at": f"2026-05-0{day}T08:00:00+00:00"}]},
                    format="json",
                )
                assert r.status_code == 200, r.content
            else:
                r = admin_client.post(
                    "/admin/users/event/add/",
                    {
                        "customer": str(customer.pk),
                        "type": "checkin",
                        "occurred_at_0": f"2026-05-0{day}",
                        "occurred_at_1": "08:00:00",
                        "properties": "{}",
                        "external_id": "",
                    },
                )
                assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
        callbacks += queued
    run_queued(callbacks)
    keys = list(Event.objects.values_list("dedupe_key", flat=True))
    assert len(keys) == 2 and all(k.startswith("h:") for k in keys)
    assert _balance(customer) == 20  # two daily check-ins


def test_an_event_added_twice_in_the_admin_is_stored_once(admin_client):
    customer = CustomerFactory(external_id="u1")
    data = {
        "customer": str(customer.pk),
        "type": "login",
        "occurred_at_0": "2026-05-01",
        "occurred_at_1": "08:00:00",
        "properties": "{}",
        "external_id": "ev-1",
    }
    assert admin_client.post("/admin/users/event/add/", data).status_code == 302
    assert admin_client.post("/admin/users/event/add/", data).status_code == 302
    assert Event.objects.get().dedupe_key == "x:ev-1"


def test_events_are_not_edited_or_deleted_in_the_admin(admin_client):
    customer = CustomerFactory(external_id="u1")
    event = Event.objects.create(customer=customer, type="login", occurred_at="2026-05-01T08:00:00Z", dedupe_key="x:e")
    assert admin_client.post(f"/admin/users/event/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    r = admin_client.post(f"/admin/users/event/{event.pk}/change/", {"type": "checkin"})
    assert r.status_code in (302, 403)
    assert Event.objects.get().type == "login"


def _customer_post(customer: Customer, tags: list[str], stored_tags: list[CustomerTag] = (), **changes) -> dict:
    data = {
        "external_id": customer.external_id,
        "name": customer.name,
        "nickname": customer.nickname,
        "phone": customer.phone,
        "email": customer.email,
        "gender": customer.gender,
        "city": customer.city,
        "timezone": customer.timezone,
        "signup_at_0": "",
        "signup_at_1": "",
        "channel": "",
        "referred_by": "",
        "tags-TOTAL_FORMS": str(len(stored_tags) + len(tags)),
        "tags-INITIAL_FORMS": str(len(stored_tags)),
        "tags-MIN_NUM_FORMS": "0",
        "tags-MAX_NUM_FORMS": "1000",
    }
    for i, tag in enumerate(stored_tags):
        data |= {
            f"tags-{i}-id": str(tag.pk),
            f"tags-{i}-customer": str(customer.pk),
            f"tags-{i}-tag": tag.tag,
            f"tags-{i}-DELETE": "on",
        }
    for i, tag in enumerate(tags, start=len(stored_tags)):
        data |= {f"tags-{i}-customer": str(customer.pk), f"tags-{i}-tag": tag}
    data.update(changes)
    return data


def test_the_tag_inline_writes_through_the_service_with_an_audit_row(admin_client):
    customer = CustomerFactory(external_id="c1", phone="13812341633")
    old = CustomerTag.objects.create(customer=customer, tag="old")
    r = admin_client.post(
        f"/admin/users/customer/{customer.pk}/change/", _customer_post(customer, ["vip", "new"], [old], name="Renamed")
    )
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
    assert sorted(customer.tags.values_list("tag", flat=True)) == ["new", "vip"]
    changes = [e.changes for e in AuditEntry.objects.filter(action="customer.change", object_id=str(customer.pk))]
    assert {"tags": [["old"], ["new", "vip"]]} in changes
    assert any(c.get("name", [None, None])[1] == "Renamed" for c in changes)


def test_a_customer_form_value_the_api_refuses_is_a_form_error(admin_client):
    customer = CustomerFactory(external_id="c1")
    r = admin_client.post(
        f"/admin/users/customer/{customer.pk}/change/", _customer_post(customer, [], timezone="Mars/Base")
    )
    assert r.status_code == 200
    assert "timezone" in r.context["adminform"].form.errors


def _order_csv(rows: list[list]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(ORDER_HEADERS)
    writer.writerows(rows)
    return out.getvalue().encode()


def test_an_order_import_refunds_like_the_api(admin_client, api, django_capture_on_commit_callbacks):
    customer = CustomerFactory(external_id="u1")
    _api_order(api, django_capture_on_commit_callbacks)
    assert _balance(customer) == 120
    upload = SimpleUploadedFile("o.csv", _order_csv([["o-1", "u1", "120.00", "CNY", "refunded", PAID_AT]]))
    preview = admin_client.post("/admin/users/order/import/", {"import_file": upload, "format": "0", "resource": "0"})
    assert preview.context["confirm_form"] is not None, preview.context["result"].invalid_rows
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        done = admin_client.post("/admin/users/order/process_import/", preview.context["confirm_form"].initial)
    assert done.status_code == 302
    run_queued(callbacks)
    customer.refresh_from_db()
    assert (customer.paid_orders, customer.paid_amount, _balance(customer)) == (0, Decimal("0"), 0)
    order = Order.objects.get(external_id="o-1")
    entry = AuditEntry.objects.get(action="order.change", object_id=str(order.pk))
    assert entry.changes == {"status": ["paid", "refunded"]}
    assert entry.actor_label == "admin-user"


def test_a_customer_import_writes_audit_rows_from_to(admin_user):
    CustomerFactory(external_id="c1", name="Old", city="北京")
    dataset = tablib.Dataset(headers=["external_id", "name", "phone", "tags"])
    dataset.append(["c1", "New", "13812341633", "vip"])
    dataset.append(["c2", "Fresh", "", ""])
    result = CustomerResource(pii=True, actor=admin_user).import_data(dataset, dry_run=False, use_transactions=True)
    assert not result.has_validation_errors(), [r.error_dict for r in result.invalid_rows]
    c1, c2 = Customer.objects.get(external_id="c1"), Customer.objects.get(external_id="c2")
    change = AuditEntry.objects.get(action="customer.change", object_id=str(c1.pk))
    assert change.changes["name"] == ["Old", "New"]
    assert change.changes["phone"][1] == "138****1633"  # audit rows hold no contact details
    assert change.changes["tags"] == [[], ["vip"]]
    created = AuditEntry.objects.get(action="customer.create", object_id=str(c2.pk))
    assert created.changes["name"] == ["", "Fresh"] and created.actor_id == admin_user.pk


def test_the_preview_shows_the_services_row_errors_and_writes_nothing(admin_client):
    content = b"external_id,name,referred_by\nc1,A,ghost\nc2,B,c2\n"
    upload = SimpleUploadedFile("c.csv", content)
    preview = admin_client.post(
        "/admin/users/customer/import/", {"import_file": upload, "format": "0", "resource": "0"}
    )
    assert preview.status_code == 200
    result = preview.context["result"]
    errors = {row.number: row.field_specific_errors for row in result.invalid_rows}
    assert set(errors) == {1, 2}
    assert "Unknown referrer 'ghost'" in errors[1]["referred_by"][0]
    assert "cannot refer themself" in errors[2]["referred_by"][0]
    assert not Customer.objects.exists() and not AuditEntry.objects.exists()


def _customers_dataset(n: int) -> tablib.Dataset:
    dataset = tablib.Dataset(headers=["external_id", "name", "tags", "referred_by"])
    for i in range(n):
        dataset.append([f"c{i}", f"Name {i}", "vip, new", "c0" if i else ""])
    return dataset


def _orders_dataset(n: int) -> tablib.Dataset:
    dataset = tablib.Dataset(headers=ORDER_HEADERS)
    for i in range(n):
        dataset.append([f"o{i}", f"c{i % 7}", "10.00", "CNY", "paid", PAID_AT])
    return dataset


def _import_queries(resource, dataset) -> int:
    with CaptureQueriesContext(connection) as queries:
        result = resource.import_data(dataset, dry_run=False, use_transactions=True)
    assert not result.has_errors() and not result.has_validation_errors(), [r.error_dict for r in result.invalid_rows]
    return len(queries)


@pytest.mark.postgres  # SQLite's bound-parameter limit splits a bulk insert into more statements as rows grow
def test_the_import_query_count_does_not_grow_with_its_rows(admin_user):
    small = _import_queries(CustomerResource(pii=True, actor=admin_user), _customers_dataset(10))
    Customer.objects.all().delete()
    AuditEntry.objects.all().delete()
    large = _import_queries(CustomerResource(pii=True, actor=admin_user), _customers_dataset(200))
    assert small == large
    assert Customer.objects.count() == 200 and CustomerTag.objects.count() == 400
    # Updating the same rows again costs the same too.
    assert _import_queries(CustomerResource(pii=True, actor=admin_user), _customers_dataset(200)) <= large

    orders_small = _import_queries(OrderResource(actor=admin_user), _orders_dataset(10))
    Order.objects.all().delete()
    orders_large = _import_queries(OrderResource(actor=admin_user), _orders_dataset(200))
    assert orders_small == orders_large
    assert Order.objects.count() == 200


def test_a_customer_edit_cannot_change_the_upsert_key(admin_client):
    customer = CustomerFactory(external_id="c1")
    r = admin_client.post(
        f"/admin/users/customer/{customer.pk}/change/", _customer_post(customer, [], external_id="c2", city="杭州")
    )
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
    assert list(Customer.objects.values_list("external_id", "city")) == [("c1", "杭州")]


# --- Review fixes: an order stays with its customer; referrers across import batches;
# --- events added in the admin are audited.


def test_an_order_cannot_move_to_another_customer_through_the_api(api, django_capture_on_commit_callbacks):
    CustomerFactory(external_id="u1")
    CustomerFactory(external_id="u2")
    _api_order(api, django_capture_on_commit_callbacks)
    moved = {"external_id": "o-1", "customer": "u2", "amount": "120.00", "status": "paid", "occurred_at": PAID_AT}
    r = api.post("/api/v1/orders/batch", {"items": [moved]}, format="json")
    assert r.status_code == 200
    assert (
        r.json()["errors"] == [{"index": 0, "field": "customer", "message": r.json()["errors"][0]["message"]}]
        and "cannot move" in r.json()["errors"][0]["message"]
    )
    r = api.post("/api/v1/orders/batch", {"items": [moved], "atomic": True}, format="json")
    assert r.status_code == 422
    assert Order.objects.get(external_id="o-1").customer.external_id == "u1"


def test_an_order_cannot_be_moved_in_the_admin_and_pays_nobody_twice(
    admin_client, api, django_capture_on_commit_callbacks
):
    first = CustomerFactory(external_id="u1")
    second = CustomerFactory(external_id="u2")
    _api_order(api, django_capture_on_commit_callbacks)
    order = Order.objects.get(external_id="o-1")
    before = (_balance(first), _balance(second))
    with django_capture_on_commit_callbacks(execute=False) as queued:
        url = f"/admin/users/order/{order.pk}/change/"
        r = admin_client.post(url, _admin_order_post(order, customer=str(second.pk)))
    run_queued(queued)
    assert r.status_code == 302  # the customer is read-only on an existing order: the post's value is ignored
    order.refresh_from_db()
    assert order.customer_id == first.pk and (_balance(first), _balance(second)) == before == (before[0], 0)


def test_a_customer_import_finds_a_referrer_further_down_the_file_past_a_batch(admin_user, monkeypatch):
    import users.resources

    monkeypatch.setattr(users.resources, "IMPORT_BATCH_SIZE", 2)
    dataset = tablib.Dataset(headers=["external_id", "name", "referred_by"])
    dataset.append(["c1", "Referred twice removed", "c2"])
    dataset.append(["c2", "Referred", "c3"])
    dataset.append(["x1", "Unrelated", ""])
    dataset.append(["x2", "Unrelated", ""])
    dataset.append(["c3", "Referrer", ""])
    result = CustomerResource(pii=True, actor=admin_user).import_data(dataset, dry_run=False, use_transactions=True)
    assert not result.has_validation_errors(), [r.error_dict for r in result.invalid_rows]
    refs = dict(Customer.objects.values_list("external_id", "referred_by__external_id"))
    assert refs == {"c1": "c2", "c2": "c3", "c3": None, "x1": None, "x2": None}


def test_an_event_added_in_the_admin_leaves_an_audit_row(admin_client, admin_user):
    customer = CustomerFactory(external_id="u1")
    data = {
        "customer": str(customer.pk),
        "type": "login",
        "occurred_at_0": "2026-05-01",
        "occurred_at_1": "08:00:00",
        "properties": "{}",
        "external_id": "ev-9",
    }
    assert admin_client.post("/admin/users/event/add/", data).status_code == 302
    entry = AuditEntry.objects.get(action="event.create")
    assert entry.object_id == str(Event.objects.get().pk) and entry.actor_id == admin_user.pk
    assert entry.changes == {"type": [None, "login"], "customer": [None, "u1"]}

import csv
import io
from decimal import Decimal

import openpyxl
import pytest
import tablib
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from users.models import Customer, CustomerTag, Order
from users.resources import CustomerResource, OrderResource

from ..queued import queued_tasks
from .factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db

CUSTOMER_HEADERS = [
    "external_id",
    "name",
    "phone",
    "email",
    "gender",
    "timezone",
    "signup_at",
    "tags",
    "consent_sms",
    "do_not_contact",
]


def _csv(headers: list[str], rows: list[list]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue().encode()


def _xlsx(headers: list[str], rows: list[list]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.fixture
def admin_client(make_user):
    client = Client()
    client.force_login(make_user("admin"))
    return client


def _import(client: Client, model: str, content: bytes, *, fmt: int = 0, name: str = "customers.csv"):
    """Runs the admin's two steps: upload (dry-run preview), then confirm when the preview allows it."""
    upload = SimpleUploadedFile(name, content)
    preview = client.post(f"/admin/users/{model}/import/", {"import_file": upload, "format": str(fmt), "resource": "0"})
    assert preview.status_code == 200, preview.content[:500]
    confirm_form = preview.context.get("confirm_form")
    if confirm_form is None:
        return preview, None
    done = client.post(f"/admin/users/{model}/process_import/", confirm_form.initial)
    return preview, done


GOOD_ROWS = [
    [
        "c1",
        "张伟",
        "13812341633",
        "Zhang.Wei@Example.com",
        "male",
        "Asia/Shanghai",
        "2026-01-02T10:00:00+08:00",
        "vip, new",
        "1",
        "0",
    ],
    ["c2", "李娜", "", "", "female", "", "", "", "", ""],
]


def test_csv_import_creates_rows_after_the_preview(admin_client):
    preview, done = _import(admin_client, "customer", _csv(CUSTOMER_HEADERS, GOOD_ROWS))
    # The dry-run preview writes nothing.
    assert done is not None, preview.context["result"].invalid_rows
    assert done.status_code == 302
    assert Customer.objects.count() == 2
    c1 = Customer.objects.get(external_id="c1")
    assert (c1.name, c1.phone, c1.email, c1.gender) == ("张伟", "13812341633", "zhang.wei@example.com", "male")
    assert c1.consent_sms is True and c1.do_not_contact is False
    assert c1.signup_at.isoformat() == "2026-01-02T02:00:00+00:00"
    assert sorted(CustomerTag.objects.filter(customer=c1).values_list("tag", flat=True)) == ["new", "vip"]
    c2 = Customer.objects.get(external_id="c2")
    assert c2.timezone == "Asia/Shanghai" and c2.consent_sms is False


def test_preview_writes_nothing(admin_client):
    upload = SimpleUploadedFile("c.csv", _csv(CUSTOMER_HEADERS, GOOD_ROWS))
    preview = admin_client.post("/admin/users/customer/import/", {"import_file": upload, "format": "0"})
    assert preview.status_code == 200
    assert preview.context["confirm_form"] is not None
    assert Customer.objects.count() == 0


def test_file_with_one_bad_row_imports_nothing_and_reports_the_row(admin_client):
    rows = [
        *GOOD_ROWS,
        ["c3", "Bad", "not-a-phone", "x@example.com", "robot", "Mars/Base", "2026-01-02 10:00", "", "", ""],
    ]
    preview, done = _import(admin_client, "customer", _csv(CUSTOMER_HEADERS, rows))
    assert done is None  # no confirm step is offered
    result = preview.context["result"]
    assert result.has_validation_errors()
    [invalid] = result.invalid_rows
    assert invalid.number == 3
    assert set(invalid.field_specific_errors) == {"phone", "gender", "timezone", "signup_at"}
    assert "not a phone number" in " ".join(invalid.field_specific_errors["phone"])
    assert Customer.objects.count() == 0


def test_confirm_step_rolls_back_when_the_file_turned_bad(admin_client, settings, tmp_path):
    """Even a hand-made confirm POST cannot import part of a file with a bad row."""
    resource = CustomerResource(pii=True)
    dataset = tablib.Dataset(headers=CUSTOMER_HEADERS)
    for row in [*GOOD_ROWS, ["c3", "", "", "", "robot", "", "", "", "", ""]]:
        dataset.append(row)
    from users.admin import CustomerAdmin

    kwargs = CustomerAdmin(Customer, None).get_import_data_kwargs(request=None)
    result = resource.import_data(dataset, dry_run=False, raise_errors=False, **kwargs)
    assert result.has_validation_errors()
    assert Customer.objects.count() == 0


def test_unknown_customer_and_bad_amounts_are_row_errors(settings):
    CustomerFactory(external_id="c1")
    headers = ["external_id", "customer", "amount", "currency", "status", "occurred_at"]
    dataset = tablib.Dataset(headers=headers)
    dataset.append(["o1", "c1", "10.50", "", "paid", "2026-05-01T10:00:00+08:00"])
    dataset.append(["o2", "ghost", "10.50", "CNY", "paid", "2026-05-01T10:00:00+08:00"])
    dataset.append(["o3", "c1", "-1", "CNY", "paid", "2026-05-01T10:00:00+08:00"])
    dataset.append(["o4", "c1", str(settings.OPS_MAX_ORDER_AMOUNT + 1), "CNY", "paid", "2026-05-01T10:00:00+08:00"])
    dataset.append(["o5", "c1", "1.00", "USD", "paid", "2026-05-01T10:00:00+08:00"])
    dataset.append(["o6", "c1", "1.00", "CNY", "paid", "2026-05-01 10:00:00"])
    dataset.append(["o7", "c1", "1.00", "CNY", "lost", "2026-05-01T10:00:00+08:00"])
    result = OrderResource().import_data(dataset, dry_run=True, raise_errors=False, use_transactions=True)
    errors = {row.number: set(row.field_specific_errors) for row in result.invalid_rows}
    assert errors == {2: {"customer"}, 3: {"amount"}, 4: {"amount"}, 5: {"currency"}, 6: {"occurred_at"}, 7: {"status"}}
    assert Order.objects.count() == 0


def test_order_csv_import_writes_orders(admin_client, django_capture_on_commit_callbacks):
    customer = CustomerFactory(external_id="c1")
    headers = ["external_id", "customer", "amount", "currency", "status", "occurred_at"]
    content = _csv(
        headers,
        [
            ["o1", "c1", "10.50", "CNY", "paid", "2026-05-01T10:00:00+08:00"],
            ["o2", "c1", "5", "", "refunded", "2026-05-02T10:00:00Z"],
        ],
    )
    with django_capture_on_commit_callbacks(execute=False) as preview_callbacks:
        upload = SimpleUploadedFile("orders.csv", content)
        preview = admin_client.post(
            "/admin/users/order/import/", {"import_file": upload, "format": "0", "resource": "0"}
        )
    assert preview_callbacks == []  # the preview queued nothing
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        done = admin_client.post("/admin/users/order/process_import/", preview.context["confirm_form"].initial)
    assert done.status_code == 302
    assert {o.external_id: (o.amount, o.status) for o in Order.objects.all()} == {
        "o1": (Decimal("10.50"), "paid"),
        "o2": (Decimal("5.00"), "refunded"),
    }
    # The roll-up and points follow, as for API batches.
    assert queued_tasks(callbacks) == {
        "users.customer_order_stats_refresh": [([customer.pk],)],
        "incentives.order_rules_apply": [(sorted(Order.objects.values_list("id", flat=True)),)],
        "campaigns.conversions_attribute": [(sorted(Order.objects.values_list("id", flat=True)),)],
    }


def test_xlsx_import_works(admin_client):
    rows = [
        [
            "c9",
            "王芳",
            13812341633,
            "wf@example.com",
            "female",
            "Asia/Shanghai",
            "2026-01-02T10:00:00+08:00",
            "vip",
            True,
            False,
        ]
    ]
    _preview, done = _import(admin_client, "customer", _xlsx(CUSTOMER_HEADERS, rows), fmt=1, name="c.xlsx")
    assert done is not None and done.status_code == 302
    customer = Customer.objects.get(external_id="c9")
    assert (customer.phone, customer.email, customer.consent_sms) == ("13812341633", "wf@example.com", True)


def test_import_updates_by_external_id_and_keeps_empty_cells(admin_client):
    CustomerFactory(external_id="c1", name="Old", phone="13900000000", city="北京")
    _preview, done = _import(admin_client, "customer", _csv(["external_id", "name", "phone"], [["c1", "New", ""]]))
    assert done is not None
    customer = Customer.objects.get(external_id="c1")
    assert (customer.name, customer.phone, customer.city) == ("New", "13900000000", "北京")
    assert Customer.objects.count() == 1


def _staff_without_pii(make_user):
    user = make_user(None, username="staff-nopii", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="users", codename__in=["view_customer", "view_order"])
    )
    return user


def _export_rows(client: Client) -> list[dict]:
    response = client.post(
        "/admin/users/customer/export/",
        {
            "format": "0",
            "resource": "0",
            **{f"customerresource_{name}": "on" for name in ["external_id", "phone", "email", "tags"]},
        },
    )
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/csv")
    return list(
        csv.DictReader(
            io.StringIO(
                b"".join(response.streaming_content if response.streaming else [response.content]).decode("utf-8-sig")
            )
        )
    )


def test_export_masks_pii_for_a_user_without_view_pii(make_user):
    customer = CustomerFactory(external_id="c1", phone="13812341633", email="zhang.wei@example.com")
    CustomerTag.objects.create(customer=customer, tag="vip")
    client = Client()
    client.force_login(_staff_without_pii(make_user))
    [row] = _export_rows(client)
    assert row["phone"] == "138****1633"
    assert row["email"] == "z***@example.com"
    assert row["tags"] == "vip"


def test_export_shows_pii_to_a_user_with_view_pii(admin_client):
    CustomerFactory(external_id="c1", phone="13812341633", email="zhang.wei@example.com")
    [row] = _export_rows(admin_client)
    assert (row["phone"], row["email"]) == ("13812341633", "zhang.wei@example.com")


def test_exported_file_reimports_unchanged(admin_client):
    customer = CustomerFactory(external_id="c1", phone="13812341633", birthday=None)
    referrer = CustomerFactory(external_id="c0")
    Customer.objects.filter(pk=customer.pk).update(referred_by=referrer)
    OrderFactory(customer=customer, external_id="o1")
    dataset = CustomerResource(pii=True).export(Customer.objects.order_by("id"))
    result = CustomerResource(pii=True).import_data(dataset, dry_run=False, use_transactions=True)
    assert not result.has_errors() and not result.has_validation_errors()
    orders = OrderResource().export(Order.objects.all())
    assert orders.dict[0]["customer"] == "c1"
    again = OrderResource().import_data(orders, dry_run=False, use_transactions=True)
    assert not again.has_validation_errors(), [r.error_dict for r in again.invalid_rows]
    assert Order.objects.get().amount == Decimal("99.00")


def test_masked_export_cannot_overwrite_real_values():
    CustomerFactory(external_id="c1", phone="13812341633", email="zhang.wei@example.com")
    dataset = CustomerResource(pii=False).export(Customer.objects.all())
    result = CustomerResource(pii=False).import_data(
        dataset, dry_run=False, use_transactions=True, rollback_on_validation_errors=True
    )
    assert result.has_validation_errors()
    assert Customer.objects.get().phone == "13812341633"


def test_changelist_and_change_form_mask_pii_without_view_pii(make_user):
    customer = CustomerFactory(external_id="c1", phone="13812341633", email="zhang.wei@example.com")
    client = Client()
    client.force_login(_staff_without_pii(make_user))
    listing = client.get("/admin/users/customer/")
    assert listing.status_code == 200
    assert b"138****1633" in listing.content and b"13812341633" not in listing.content
    form = client.get(f"/admin/users/customer/{customer.pk}/change/")
    assert form.status_code == 200
    assert b"138****1633" in form.content and b"13812341633" not in form.content
    assert b"zhang.wei@example.com" not in form.content


def test_changelist_shows_pii_with_view_pii(admin_client):
    CustomerFactory(external_id="c1", phone="13812341633")
    listing = admin_client.get("/admin/users/customer/")
    assert b"13812341633" in listing.content


def test_order_and_event_admin_pages_render_without_a_customer_select(admin_client):
    order = OrderFactory()
    for url in [
        "/admin/users/order/",
        f"/admin/users/order/{order.pk}/change/",
        "/admin/users/event/",
        "/admin/users/event/add/",
        f"/admin/users/customer/{order.customer.pk}/change/",
    ]:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert b'<select name="customer"' not in response.content
        assert b'<select name="referred_by"' not in response.content


def test_admin_change_writes_an_audit_entry(admin_client):
    from core.models import AuditEntry

    customer = CustomerFactory(external_id="c1", city="上海")
    data = {
        "external_id": "c1",
        "name": customer.name,
        "nickname": customer.nickname,
        "phone": customer.phone,
        "email": customer.email,
        "gender": "unknown",
        "city": "北京",
        "timezone": "Asia/Shanghai",
        "signup_at_0": "2026-01-01",
        "signup_at_1": "00:00:00",
        "channel": "",
        "referred_by": "",
        "consent_push": "on",
        "consent_sms": "on",
        "consent_email": "on",
        "tags-TOTAL_FORMS": "0",
        "tags-INITIAL_FORMS": "0",
        "tags-MIN_NUM_FORMS": "0",
        "tags-MAX_NUM_FORMS": "1000",
    }
    response = admin_client.post(f"/admin/users/customer/{customer.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    entry = AuditEntry.objects.get(action="customer.change")
    assert entry.changes["city"] == ["上海", "北京"]


def test_xlsx_export_masks_pii_too(make_user):
    CustomerFactory(external_id="c1", phone="13812341633", email="zhang.wei@example.com")
    client = Client()
    client.force_login(_staff_without_pii(make_user))
    response = client.post(
        "/admin/users/customer/export/",
        {
            "format": "1",
            "resource": "0",
            **{f"customerresource_{name}": "on" for name in ["external_id", "phone", "email"]},
        },
    )
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("external_id", "phone", "email")
    assert rows[1] == ("c1", "138****1633", "z***@example.com")

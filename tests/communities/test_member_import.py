"""Member lists imported in the admin (CSV and XLSX): each row is a ``member_join`` (the
span, the audit row under the importing operator), the preview writes nothing, a file
with one bad row imports nothing and shows each bad row's error; the export writes
every span back. The membership, group and staff admins write through the services."""

import csv
import io
from datetime import UTC, datetime

import openpyxl
import pytest
import tablib
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from communities.models import CommunityGroup, GroupStaff, MemberRole, Membership
from communities.resources import MembershipResource
from communities.services import groups as group_services
from core.models import AuditEntry
from tests.users.factories import CustomerFactory

pytestmark = pytest.mark.django_db

HEADERS = ["group", "customer", "role", "joined_at", "platform_member_id", "invited_by"]
GOOD = [
    ["runners", "c-1", "koc", "2026-03-02T10:00:00+08:00", "wxid-1", ""],
    ["runners", "c-2", "", "", "", "c-1"],
    ["swim", "c-1", "admin", "", "", ""],
]


@pytest.fixture
def admin_user(make_user):
    for external_id in ("c-1", "c-2", "c-3"):
        CustomerFactory(external_id=external_id)
    return make_user("admin", username="importer")


@pytest.fixture
def groups(admin_user, make_user):
    owner = make_user("community_manager", "mgr-one")
    return [
        group_services.group_save(group=CommunityGroup(code=code, name=code.title(), owner=owner), actor=owner)
        for code in ("runners", "swim")
    ]


@pytest.fixture
def admin_client(admin_user):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(admin_user)
    return client


def _csv(rows, headers=HEADERS) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue().encode()


def _xlsx(rows, headers=HEADERS) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _import(client: Client, content: bytes, *, fmt: int = 0, name: str = "members.csv"):
    """The admin's two steps: upload (the dry-run preview), then confirm when offered."""
    preview = client.post(
        "/admin/communities/membership/import/",
        {"import_file": SimpleUploadedFile(name, content), "format": str(fmt), "resource": "0"},
    )
    assert preview.status_code == 200, preview.content[:800]
    confirm = preview.context.get("confirm_form")
    if confirm is None:
        return preview, None
    return preview, client.post("/admin/communities/membership/process_import/", confirm.initial)


def _row_errors(preview) -> dict[int, dict[str, list[str]]]:
    return {row.number: row.error_dict for row in preview.context["result"].invalid_rows}


def _check_imported(admin_user) -> None:
    first = Membership.objects.get(group__code="runners", customer__external_id="c-1")
    assert (first.role, first.platform_member_id, first.left_at) == ("koc", "wxid-1", None)
    assert first.joined_at == datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    second = Membership.objects.get(group__code="runners", customer__external_id="c-2")
    assert second.role == MemberRole.MEMBER and second.invited_by.external_id == "c-1"
    assert Membership.objects.get(group__code="swim", customer__external_id="c-1").role == "admin"
    joins = AuditEntry.objects.filter(action="membership.join")
    assert joins.count() == 3 and {e.actor_id for e in joins} == {admin_user.pk}


def test_a_good_csv_imports_through_member_join_after_a_preview_that_writes_nothing(admin_client, admin_user, groups):
    preview = admin_client.post(
        "/admin/communities/membership/import/",
        {"import_file": SimpleUploadedFile("m.csv", _csv(GOOD)), "format": "0"},
    )
    assert preview.status_code == 200 and preview.context["confirm_form"] is not None
    assert not Membership.objects.exists() and not AuditEntry.objects.filter(action="membership.join").exists()
    _preview, done = _import(admin_client, _csv(GOOD))
    assert done is not None and done.status_code == 302
    assert Membership.objects.count() == 3
    _check_imported(admin_user)


def test_a_good_xlsx_imports_the_same(admin_client, admin_user, groups):
    _preview, done = _import(admin_client, _xlsx(GOOD), fmt=1, name="members.xlsx")
    assert done is not None and done.status_code == 302
    _check_imported(admin_user)


def test_bad_rows_are_each_reported_and_nothing_is_written(admin_client, groups):
    bad = [
        ["runners", "c-1", "koc", "", "", ""],
        ["runners", "nobody", "", "", "", ""],
        ["nowhere", "c-2", "", "", "", ""],
        ["swim", "c-2", "owner", "", "", ""],
        ["swim", "c-3", "", "2026-03-02 10:00", "", ""],
        ["runners", "c-1", "", "", "", ""],
        ["swim", "c-1", "", "", "", "c-1"],
        ["swim", "c-2", "", "2090-01-01T00:00:00+00:00", "", "ghost"],
    ]
    preview, done = _import(admin_client, _csv(bad))
    assert done is None
    errors = _row_errors(preview)
    assert sorted(errors) == [2, 3, 4, 5, 6, 7, 8]
    assert "Unknown customer nobody" in errors[2]["customer"][0]
    assert "Unknown group nowhere" in errors[3]["group"][0]
    assert "Unknown role owner" in errors[4]["role"][0]
    assert "UTC offset" in errors[5]["joined_at"][0]
    assert "twice" in errors[6]["customer"][0]
    assert "invite themselves" in errors[7]["invited_by"][0]
    assert "future" in errors[8]["joined_at"][0] and "Unknown customer ghost" in errors[8]["invited_by"][0]
    assert not Membership.objects.exists()
    assert not AuditEntry.objects.filter(action="membership.join").exists()


def test_a_customer_already_in_the_group_is_a_row_error_and_the_file_writes_nothing(admin_client, groups):
    group_services.member_join(group=groups[0], customer=CustomerFactory._meta.model.objects.get(external_id="c-2"))
    preview, done = _import(admin_client, _csv(GOOD))
    assert done is None
    assert "already in" in _row_errors(preview)[2]["customer"][0]
    assert Membership.objects.count() == 1


def test_a_manager_imports_only_into_the_groups_they_manage(make_user, groups):
    other = make_user("community_manager", "mgr-two")
    other.is_staff = True
    other.save(update_fields=["is_staff"])
    mine = group_services.group_save(group=CommunityGroup(code="mine", name="Mine", owner=other), actor=other)
    CustomerFactory(external_id="c-9")
    rows = [["mine", "c-9", "", "", "", ""], ["runners", "c-9", "", "", "", ""]]
    dataset = MembershipResource(actor=other).import_data(
        tablib.Dataset(*rows, headers=HEADERS), dry_run=False, use_transactions=True
    )
    assert dataset.has_validation_errors()
    errors = {row.number: row.error_dict for row in dataset.invalid_rows}
    assert "Unknown group runners" in errors[2]["group"][0]  # not even "you may not": they never see it
    assert not Membership.objects.filter(group=mine).exists()
    ok = MembershipResource(actor=other).import_data(
        tablib.Dataset(rows[0], headers=HEADERS), dry_run=False, use_transactions=True
    )
    assert not ok.has_validation_errors() and not ok.has_errors()
    assert Membership.objects.filter(group=mine, customer__external_id="c-9").exists()


def test_a_dry_run_through_the_resource_writes_nothing(admin_user, groups):
    result = MembershipResource(actor=admin_user).import_data(
        tablib.Dataset(*GOOD, headers=HEADERS), dry_run=True, use_transactions=True
    )
    assert not result.has_errors() and not result.has_validation_errors()
    assert [r.import_type for r in result.rows] == ["new", "new", "new"]
    assert not Membership.objects.exists()


def test_the_export_writes_every_span(admin_user, groups):
    customer = CustomerFactory._meta.model.objects.get(external_id="c-1")
    group_services.member_join(group=groups[0], customer=customer, platform_member_id="wx")
    group_services.member_leave(group=groups[0], customer=customer, reason="moved")
    group_services.member_join(group=groups[0], customer=customer, role="koc")
    data = MembershipResource().export(Membership.objects.order_by("pk"))
    assert data.headers == ["id", *HEADERS, "left_at", "left_reason"]
    rows = data.dict
    assert [(r["group"], r["customer"], r["role"], bool(r["left_at"])) for r in rows] == [
        ("runners", "c-1", "member", True),
        ("runners", "c-1", "koc", False),
    ]
    assert rows[0]["left_reason"] == "moved"


# --- the admin's forms ---------------------------------------------------------------


def test_the_admin_adds_a_member_through_member_join_and_refuses_a_second_open_span(admin_client, groups):
    customer = CustomerFactory._meta.model.objects.get(external_id="c-3")
    data = {"group": groups[0].pk, "customer": customer.pk, "role": "member", "platform_member_id": "p"}
    response = admin_client.post("/admin/communities/membership/add/", {**data, "joined_at_0": "", "joined_at_1": ""})
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    assert AuditEntry.objects.filter(action="membership.join").count() == 1
    again = admin_client.post("/admin/communities/membership/add/", data)
    assert again.status_code == 200
    assert "already in" in str(again.context["adminform"].form.errors)
    assert Membership.objects.filter(customer=customer).count() == 1


def test_the_admin_changes_a_role_and_ends_a_span_through_the_services(admin_client, groups):
    customer = CustomerFactory._meta.model.objects.get(external_id="c-3")
    span = group_services.member_join(group=groups[0], customer=customer)
    url = f"/admin/communities/membership/{span.pk}/change/"
    response = admin_client.post(url, {"role": "koc", "left_at_0": "", "left_at_1": "", "left_reason": ""})
    assert response.status_code == 302
    assert Membership.objects.get(pk=span.pk).role == "koc"
    assert AuditEntry.objects.filter(action="membership.role").count() == 1
    before = admin_client.post(
        url, {"role": "koc", "left_at_0": "2000-01-01", "left_at_1": "10:00", "left_reason": "x"}
    )
    assert before.status_code == 200 and "before" in str(before.context["adminform"].form.errors)
    assert Membership.objects.get(pk=span.pk).left_at is None


def test_the_group_admin_refuses_a_negative_capacity_and_a_duplicate_platform_id(admin_client, groups, admin_user):
    CommunityGroup.objects.filter(pk=groups[0].pk).update(platform_group_id="wx-1")
    base = {
        "code": "new",
        "name": "New",
        "platform": "wechat",
        "owner": admin_user.pk,
        "status": "active",
        "tags": "[]",
    }
    negative = admin_client.post("/admin/communities/communitygroup/add/", {**base, "capacity": "-3"})
    assert negative.status_code == 200 and "capacity" in negative.context["adminform"].form.errors
    dup = admin_client.post(
        "/admin/communities/communitygroup/add/", {**base, "capacity": "5", "platform_group_id": "wx-1"}
    )
    assert dup.status_code == 200 and dup.context["adminform"].form.errors
    assert CommunityGroup.objects.count() == 2
    created = admin_client.post("/admin/communities/communitygroup/add/", {**base, "capacity": "5"})
    assert created.status_code == 302
    assert AuditEntry.objects.filter(
        action="community_group.create", object_id=str(CommunityGroup.objects.get(code="new").pk)
    )


def test_the_staff_admin_grants_and_revokes_through_the_services(admin_client, groups, make_user):
    helper = make_user("group_admin", "helper")
    response = admin_client.post(
        "/admin/communities/groupstaff/add/", {"group": groups[0].pk, "user": helper.pk, "can_post": "on"}
    )
    assert response.status_code == 302
    staff = GroupStaff.objects.get(user=helper)
    assert staff.can_post and not staff.can_manage
    assert AuditEntry.objects.filter(action="group_staff.grant").count() == 1
    nobody = make_user(None, "no-role")
    refused = admin_client.post(
        "/admin/communities/groupstaff/add/", {"group": groups[0].pk, "user": nobody.pk, "can_post": "on"}
    )
    assert refused.status_code == 200 and "no role" in str(refused.context["adminform"].form.errors)
    deleted = admin_client.post(f"/admin/communities/groupstaff/{staff.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert not GroupStaff.objects.exists()
    assert AuditEntry.objects.filter(action="group_staff.revoke").count() == 1


def test_a_second_manager_in_the_admin_sees_nothing_of_the_first_ones_groups(make_user, groups):
    first_span = group_services.member_join(
        group=groups[0], customer=CustomerFactory._meta.model.objects.get(external_id="c-1")
    )
    helper = make_user("group_admin", "helper")
    staff = group_services.staff_grant(group=groups[0], user=helper, actor=groups[0].owner, can_post=True)
    second = make_user("community_manager", "mgr-two")
    second.is_staff = True
    second.save(update_fields=["is_staff"])
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(second)
    for model in ("communitygroup", "membership", "groupstaff"):
        listing = client.get(f"/admin/communities/{model}/")
        assert listing.status_code == 200 and list(listing.context["cl"].result_list) == [], model
    for url in (
        f"/admin/communities/communitygroup/{groups[0].pk}/change/",
        f"/admin/communities/membership/{first_span.pk}/change/",
        f"/admin/communities/groupstaff/{staff.pk}/change/",
    ):
        response = client.get(url)
        assert response.status_code == 302 and "跑步" not in response.content.decode(), url  # "doesn't exist"
    customer = CustomerFactory._meta.model.objects.get(external_id="c-2")
    added = client.post(
        "/admin/communities/membership/add/", {"group": groups[0].pk, "customer": customer.pk, "role": "member"}
    )
    assert added.status_code == 200 and "group" in added.context["adminform"].form.errors
    assert not Membership.objects.filter(customer=customer).exists()

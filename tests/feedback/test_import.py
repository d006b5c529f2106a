"""Ticket import in the admin (CSV and XLSX): each row is a ``ticket_open`` (SLA targets,
routing, history under the importing operator), the preview writes nothing, a file with
one bad row imports nothing and shows that row's error, and ``external_ref`` makes a
re-import open no second ticket. Export writes the same columns back."""

import csv
import io
from datetime import UTC, datetime, timedelta

import openpyxl
import pytest
import tablib
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from feedback.admin import TicketAdmin
from feedback.models import SlaTarget, Ticket, TicketEvent
from feedback.resources import MAX_IMPORT_ROWS, TicketResource
from feedback.services import tickets as services
from tests.users.factories import CustomerFactory

pytestmark = pytest.mark.django_db

HEADERS = ["external_ref", "customer", "source", "category", "priority", "subject", "body", "created_at", "team"]
GOOD = [
    ["r-1", "c-1", "", "complaint", "", "支付失败", "点击支付后提示网络错误", "2026-03-02T10:00:00+08:00", ""],
    ["r-2", "", "service", "suggestion", "high", "Dark mode", "Please add a dark mode", "", "operations"],
]


@pytest.fixture
def admin_user(make_user):
    CustomerFactory(external_id="c-1")
    return make_user("admin", username="importer")


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


def _import(client: Client, content: bytes, *, fmt: int = 0, name: str = "tickets.csv"):
    """The admin's two steps: upload (the dry-run preview), then confirm when the preview offers it."""
    preview = client.post(
        "/admin/feedback/ticket/import/",
        {"import_file": SimpleUploadedFile(name, content), "format": str(fmt), "resource": "0"},
    )
    assert preview.status_code == 200, preview.content[:800]
    confirm = preview.context.get("confirm_form")
    if confirm is None:
        return preview, None
    return preview, client.post("/admin/feedback/ticket/process_import/", confirm.initial)


def _row_errors(preview) -> dict[int, dict[str, list[str]]]:
    result = preview.context["result"]
    return {row.number: row.error_dict for row in result.invalid_rows}


def _check_imported(admin_user) -> None:
    first = Ticket.objects.get(subject="支付失败")
    assert first.customer.external_id == "c-1"
    assert (first.source, first.category, first.team.code) == ("import", "complaint", "tech")
    assert first.created_at == datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    assert first.priority_basis["matrix"]["priority"] == first.priority  # the priority model decided
    assert first.idempotency_key == "import:r-1"
    second = Ticket.objects.get(subject="Dark mode")
    assert (second.source, second.priority, second.team.code, second.customer) == (
        "service",
        "high",
        "operations",
        None,
    )
    assert second.priority_basis == {"given": "high"}
    for ticket in (first, second):
        # Both targets, from the policy of the ticket's priority, started when the ticket was opened.
        kinds = set(
            SlaTarget.objects.filter(ticket=ticket, started_at=ticket.created_at).values_list("kind", flat=True)
        )
        assert kinds == {"first_response", "resolution"}
        opened = TicketEvent.objects.get(ticket=ticket, action="opened")
        assert opened.actor_id == admin_user.pk


def test_a_good_csv_imports_through_ticket_open_after_a_preview_that_writes_nothing(admin_client, admin_user):
    preview = admin_client.post(
        "/admin/feedback/ticket/import/", {"import_file": SimpleUploadedFile("t.csv", _csv(GOOD)), "format": "0"}
    )
    assert preview.status_code == 200 and preview.context["confirm_form"] is not None
    assert not Ticket.objects.exists() and not SlaTarget.objects.exists()
    _preview, done = _import(admin_client, _csv(GOOD))
    assert done is not None and done.status_code == 302
    assert Ticket.objects.count() == 2
    _check_imported(admin_user)


def test_a_good_xlsx_imports_the_same(admin_client, admin_user):
    _preview, done = _import(admin_client, _xlsx(GOOD), fmt=1, name="tickets.xlsx")
    assert done is not None and done.status_code == 302
    assert Ticket.objects.count() == 2
    _check_imported(admin_user)


@pytest.mark.parametrize(
    ("bad", "column", "message"),
    [
        ({1: "nobody"}, "customer", "Unknown customer nobody."),
        ({5: ""}, "subject", "The subject is empty."),
        ({6: "   "}, "body", "The body is empty."),
        ({3: "gripe"}, "category", "Unknown category gripe"),
        ({3: ""}, "category", "The category is empty"),
        ({4: "whenever"}, "priority", "Unknown priority whenever"),
        ({8: "sales"}, "team", "Unknown team sales"),
        ({2: "fax"}, "source", "Unknown source fax"),
        ({7: "2026-03-02 10:00"}, "created_at", "with a UTC offset"),
        ({7: "yesterday"}, "created_at", "with a UTC offset"),
        ({7: "1969-12-31T23:00:00+00:00"}, "created_at", "must lie between"),
        ({7: "2099-01-01T00:00:00+00:00"}, "created_at", "lies in the future"),
        ({5: "x" * 201}, "subject", "longer than 200 characters"),
    ],
)
def test_a_file_with_one_bad_row_imports_nothing_and_shows_the_rows_error(admin_client, bad, column, message):
    row = list(GOOD[1])
    for index, value in bad.items():
        row[index] = value
    preview, done = _import(admin_client, _csv([GOOD[0], row, ["r-3", *GOOD[0][1:]]]))
    assert done is None  # no confirm step is offered
    errors = _row_errors(preview)
    assert list(errors) == [2]
    assert any(message in m for m in errors[2][column]), errors
    assert message in preview.content.decode()  # shown in the preview
    assert not Ticket.objects.exists() and not TicketEvent.objects.exists()


def test_an_xlsx_date_cell_without_an_offset_is_refused(admin_client):
    row = list(GOOD[0])
    row[7] = datetime(2026, 3, 2, 10, 0)  # a spreadsheet date: which timezone?
    preview, done = _import(admin_client, _xlsx([row]), fmt=1, name="t.xlsx")
    assert done is None and "with a UTC offset" in " ".join(_row_errors(preview)[1]["created_at"])
    assert not Ticket.objects.exists()


def test_the_confirm_step_rolls_back_a_file_that_turned_bad(admin_user):
    """Even a hand-made confirm (the file changed behind the preview) cannot import part of a file."""
    dataset = tablib.Dataset(headers=HEADERS)
    for row in [*GOOD, ["r-3", "ghost", "", "question", "", "Hi", "there", "", ""]]:
        dataset.append(row)
    kwargs = TicketAdmin(Ticket, None).get_import_data_kwargs(request=None)
    result = TicketResource(actor=admin_user).import_data(dataset, dry_run=False, raise_errors=False, **kwargs)
    assert result.has_validation_errors()
    assert not Ticket.objects.exists()


def test_a_refusal_by_ticket_open_itself_rolls_back_the_rows_before_it(admin_user):
    """A row the checks pass but the service refuses (here: a reference first used for
    another ticket) is that row's error, and the rows before it are rolled back."""
    services.ticket_open(
        customer=None, category="question", subject="Other", body="Other", idempotency_key="import:r-2"
    )
    dataset = tablib.Dataset(headers=HEADERS)
    for row in GOOD:
        dataset.append(row)
    kwargs = TicketAdmin(Ticket, None).get_import_data_kwargs(request=None)
    result = TicketResource(actor=admin_user).import_data(dataset, dry_run=False, raise_errors=False, **kwargs)
    [invalid] = result.invalid_rows
    assert invalid.number == 2
    assert invalid.error_dict["external_ref"] == ["This idempotency key was used for a different ticket."]
    assert list(Ticket.objects.values_list("subject", flat=True)) == ["Other"]


def test_re_importing_a_file_with_references_opens_no_second_ticket(admin_client):
    _import(admin_client, _csv(GOOD))
    assert Ticket.objects.count() == 2
    preview, done = _import(admin_client, _csv(GOOD))
    assert preview.context["result"].totals["skip"] == 2 and preview.context["result"].totals["new"] == 0
    assert done.status_code == 302
    assert Ticket.objects.count() == 2
    # The same reference for another ticket is refused on its row.
    changed = [list(GOOD[0])]
    changed[0][5] = "Another subject"
    preview, done = _import(admin_client, _csv(changed))
    assert done is None
    assert _row_errors(preview)[1]["external_ref"] == ["This idempotency key was used for a different ticket."]


def test_rows_without_a_reference_open_a_ticket_each_time(admin_client):
    rows = [["", *GOOD[1][1:]]]
    _import(admin_client, _csv(rows))
    _import(admin_client, _csv(rows))
    assert Ticket.objects.filter(subject="Dark mode").count() == 2


def test_a_reference_twice_in_one_file_is_refused(admin_client):
    preview, done = _import(admin_client, _csv([GOOD[0], ["r-1", *GOOD[1][1:]]]))
    assert done is None
    assert _row_errors(preview)[2]["external_ref"] == ["Reference r-1 appears twice in this file (first at row 1)."]
    assert not Ticket.objects.exists()


def test_a_file_over_the_row_limit_is_refused_whole(admin_user, monkeypatch):
    import feedback.resources as resources

    monkeypatch.setattr(resources, "MAX_IMPORT_ROWS", 1)
    dataset = tablib.Dataset(headers=HEADERS)
    for row in GOOD:
        dataset.append(row)
    result = TicketResource(actor=admin_user).import_data(dataset, dry_run=False, use_transactions=True)
    [invalid] = result.invalid_rows
    assert "import at most 1 at a time" in invalid.error_dict["__all__"][0]
    assert not Ticket.objects.exists()
    assert MAX_IMPORT_ROWS == 5000


def test_only_the_import_columns_are_read(admin_client):
    """An export's extra columns (id, status, assignee …) are ignored on the way back in."""
    headers = [*HEADERS, "id", "status", "assignee"]
    _preview, done = _import(admin_client, _csv([[*GOOD[1], "999", "closed", "nobody"]], headers=headers))
    ticket = Ticket.objects.get()
    assert done.status_code == 302 and ticket.status == "new" and ticket.pk != 999


def _export(client, fmt: str = "0"):
    fields = ["id", "external_ref", "customer", "category", "subject", "status", "team", "assignee", "created_at"]
    return client.post(
        "/admin/feedback/ticket/export/",
        {"format": fmt, "resource": "0", **{f"ticketresource_{name}": "on" for name in fields}},
    )


def test_the_export_writes_the_columns_and_re_imports_without_duplicates(admin_client, make_user):
    _import(admin_client, _csv(GOOD))
    operator = make_user("operator", username="op")
    ticket = Ticket.objects.get(subject="Dark mode")
    ticket.team.members.add(operator)
    services.ticket_assign(ticket=ticket, team=ticket.team, assignee=operator, actor=None)
    services.ticket_open(
        customer=None, category="question", subject='=HYPERLINK("http://x")', body="b", now=timezone.now()
    )
    response = _export(admin_client)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    content = b"".join(response.streaming_content) if response.streaming else response.content
    rows = {r["subject"]: r for r in csv.DictReader(io.StringIO(content.decode("utf-8-sig")))}
    assert rows["支付失败"]["customer"] == "c-1" and rows["支付失败"]["external_ref"] == "r-1"
    assert rows["支付失败"]["created_at"] == "2026-03-02T02:00:00+00:00"
    assert (rows["Dark mode"]["team"], rows["Dark mode"]["assignee"]) == ("operations", "op")
    assert '\'=HYPERLINK("http://x")' in rows  # no live formula in a spreadsheet
    xlsx = _export(admin_client, "1")
    assert xlsx.status_code == 200
    # The imported tickets come back as skipped: their reference is in the export.
    export_file = io.StringIO()
    writer = csv.writer(export_file)
    writer.writerow(["external_ref", "category", "subject", "body", "customer"])
    for subject in ("支付失败", "Dark mode"):
        stored = Ticket.objects.get(subject=subject)
        writer.writerow(
            [rows[subject]["external_ref"], stored.category, stored.subject, stored.body, rows[subject]["customer"]]
        )
    preview, _done = _import(admin_client, export_file.getvalue().encode())
    assert preview.context["result"].totals["skip"] == 2 and Ticket.objects.count() == 3


def test_an_import_needs_the_add_ticket_permission(make_user):
    viewer = make_user("viewer", username="v")
    viewer.is_staff = True
    viewer.save()
    client = Client()
    client.force_login(viewer)
    assert client.get("/admin/feedback/ticket/import/").status_code == 403
    assert client.get("/admin/feedback/ticket/").status_code == 200


def test_an_old_created_at_starts_the_clock_then(admin_client):
    created = (timezone.now() - timedelta(days=3)).replace(microsecond=0)
    row = ["r-9", "", "", "question", "crisis", "Old one", "From the spreadsheet", created.isoformat(), ""]
    _import(admin_client, _csv([row]))
    target = SlaTarget.objects.get(ticket__subject="Old one", kind="first_response")
    assert target.started_at == created and target.due_at < timezone.now()  # overdue at once: the sweep escalates it

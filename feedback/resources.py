"""Ticket import and export for the admin (django-import-export, CSV and XLSX).

**Import.** Columns (a header row; unknown columns are ignored, so an export's extra
columns do no harm): ``external_ref`` (optional), ``customer`` (the customer's
``external_id``, optional), ``source`` (default ``import``), ``category``,
``priority`` (optional: the priority model decides, as for the API), ``impact``,
``severity``, ``difficulty`` (optional), ``subject``, ``body``, ``created_at``
(optional, ISO 8601 with a UTC offset, 1970–2100, not in the future; the SLA clock
starts then, so an old open ticket is overdue at once) and ``team`` (a team code,
optional: the category's team otherwise).

Every row is checked first (unknown customer, empty subject or body, unknown
category, priority or team, a bad date …) and each problem is shown on its row in the
preview; a file with any bad row writes nothing. Then each row is one call of
``feedback.services.tickets.ticket_open`` — the same priority model, routing, SLA
targets and history as a ticket from the API. The preview runs those calls inside the
import's transaction, which the library rolls back, so it writes (and sends) nothing.

**Re-importing a file.** ``external_ref`` is the idempotency key (stored as
``import:<ref>``): a row whose reference was imported before opens no second ticket
(it shows as skipped), and the same reference with another customer, subject or body
is refused. Rows without a reference open a new ticket every time they are imported.

**Export.** The import's columns plus the ticket's id, status, assignee and times; the
reference of an imported ticket is exported, so an export re-imports without
duplicating those tickets."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from import_export import fields, resources
from import_export.exceptions import ImportError as RowImportError
from import_export.results import RowResult

from core.errors import ApplicationError
from core.validation import INSTANT_MAX, INSTANT_MIN, has_bad_text, instant_in_range
from users.models import Customer

from .models import Category, Difficulty, Impact, Priority, Severity, Source, Team, Ticket
from .services import tickets as services

IMPORT_COLUMNS = [
    "external_ref",
    "customer",
    "source",
    "category",
    "priority",
    "impact",
    "severity",
    "difficulty",
    "subject",
    "body",
    "created_at",
    "team",
]
EXPORT_COLUMNS = ["id", *IMPORT_COLUMNS[:-1], "status", "team", "assignee", "first_responded_at", "resolved_at"]
#: the most rows one file may hold: each is a ticket_open call, in the preview and again on confirm
MAX_IMPORT_ROWS = 5000
#: how far a created_at may lie ahead of the server's clock (clock skew of the machine that wrote the file)
FUTURE_SLACK = timedelta(minutes=5)
REF_PREFIX = "import:"
REF_MAX = 80
_LOOKUP_CHUNK = 500

_CHOICES = {
    "source": Source,
    "category": Category,
    "priority": Priority,
    "impact": Impact,
    "severity": Severity,
    "difficulty": Difficulty,
}


def _cell(value: Any) -> str:
    """A cell as text: empty for a blank one; XLSX numbers typed as integers lose their ``.0``."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


@dataclass
class _Row:
    number: int
    data: dict[str, str]
    created_at: Any = None
    errors: dict[str, list[str]] | None = None

    def error(self, column: str, message: str) -> None:
        self.errors = self.errors or {}
        self.errors.setdefault(column, []).append(message)


class _Lookups:
    """The customers and teams a file names, read once per file (one query per 500 ids)."""

    def __init__(self, rows: list[_Row]):
        ids = sorted({r.data["customer"] for r in rows if r.data["customer"]})
        self.customers: dict[str, Customer] = {}
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            chunk = ids[start : start + _LOOKUP_CHUNK]
            self.customers.update({c.external_id: c for c in Customer.objects.filter(external_id__in=chunk)})
        self.teams = {t.code: t for t in Team.objects.all()}


def _check_choices(row: _Row) -> None:
    for column, choices in _CHOICES.items():
        value = row.data[column]
        if value and value.lower() not in choices.values:
            row.error(
                column,
                _("Unknown %(column)s %(value)s: use one of %(choices)s.")
                % {"column": column, "value": value, "choices": ", ".join(choices.values)},
            )
    if not row.data["category"]:
        row.error(
            "category", _("The category is empty: use one of %(choices)s.") % {"choices": ", ".join(Category.values)}
        )


def _check_text(row: _Row) -> None:
    for column, limit in (("subject", services.MAX_SUBJECT), ("body", services.MAX_BODY)):
        value = row.data[column]
        if not value:
            row.error(column, _("The %(column)s is empty.") % {"column": column})
        elif len(value) > limit:
            row.error(
                column, _("The %(column)s is longer than %(limit)s characters.") % {"column": column, "limit": limit}
            )
        elif has_bad_text(value):
            row.error(column, _("Text must not contain NUL characters or unpaired surrogates."))
    ref = row.data["external_ref"]
    if len(ref) > REF_MAX or has_bad_text(ref):
        row.error("external_ref", _("The reference is at most %(limit)s plain characters.") % {"limit": REF_MAX})


def _created_at(raw: Any, now: datetime) -> tuple[datetime | None, str | None]:
    """The cell's instant, or the reason it is refused."""
    if raw is None or raw == "":
        return None, None
    # A spreadsheet's date cell has no UTC offset: the file must say which instant it means.
    parsed = parse_datetime(raw) if isinstance(raw, str) else None
    if parsed is None or timezone.is_naive(parsed):
        return None, _(
            "created_at must be an ISO 8601 date and time with a UTC offset, e.g. 2026-01-02T10:00:00+08:00."
        )
    if not instant_in_range(parsed):
        return None, _("created_at must lie between %(min)s and %(max)s.") % {
            "min": INSTANT_MIN.isoformat(),
            "max": INSTANT_MAX.isoformat(),
        }
    if parsed > now + FUTURE_SLACK:
        return None, _("created_at lies in the future.")
    return parsed, None


def _check_refs(rows: list[_Row], lookups: _Lookups, now: datetime) -> None:
    first_seen: dict[str, int] = {}
    for row in rows:
        customer, team, ref = row.data["customer"], row.data["team"], row.data["external_ref"]
        if customer and customer not in lookups.customers:
            row.error("customer", _("Unknown customer %(id)s.") % {"id": customer})
        if team and team.lower() not in lookups.teams:
            row.error(
                "team",
                _("Unknown team %(code)s: use one of %(codes)s.") % {"code": team, "codes": ", ".join(lookups.teams)},
            )
        if ref:
            first = first_seen.setdefault(ref, row.number)
            if first != row.number:
                row.error(
                    "external_ref",
                    _("Reference %(ref)s appears twice in this file (first at row %(row)s).")
                    % {"ref": ref, "row": first},
                )
        created_at, problem = _created_at(row.created_at, now)
        row.created_at = created_at
        if problem:
            row.error("created_at", problem)


def _column_of(exc: ApplicationError) -> str:
    """The file column a service refusal is about (its ``details`` name the field)."""
    details = exc.details if isinstance(exc.details, dict) else {}
    if exc.code == "idempotency_key_reused":
        return "external_ref"
    for column in IMPORT_COLUMNS:
        if column in details:
            return column
    return NON_FIELD_ERRORS


class TicketResource(resources.ModelResource):
    """Imports through ``ticket_open`` only (see the module docstring); exports tickets
    with their customer, team and assignee read in the export's one query."""

    external_ref = fields.Field(column_name="external_ref")
    customer = fields.Field(column_name="customer")
    team = fields.Field(column_name="team")
    assignee = fields.Field(column_name="assignee")

    class Meta:
        model = Ticket
        fields = EXPORT_COLUMNS
        export_order = EXPORT_COLUMNS
        import_id_fields = []
        use_transactions = True
        report_skipped = True

    def __init__(self, *, actor=None, **kwargs):
        super().__init__(**kwargs)
        self.actor = actor

    # --- export --------------------------------------------------------------------

    def filter_export(self, queryset, **kwargs):
        return queryset.select_related("customer", "team", "assignee")

    def dehydrate_external_ref(self, ticket: Ticket) -> str:
        key = ticket.idempotency_key or ""
        return key.removeprefix(REF_PREFIX) if key.startswith(REF_PREFIX) else ""

    def dehydrate_customer(self, ticket: Ticket) -> str:
        return ticket.customer.external_id if ticket.customer else ""

    def dehydrate_team(self, ticket: Ticket) -> str:
        return ticket.team.code if ticket.team else ""

    def dehydrate_assignee(self, ticket: Ticket) -> str:
        return ticket.assignee.get_username() if ticket.assignee else ""

    def dehydrate_created_at(self, ticket: Ticket) -> str:
        return _iso(ticket.created_at)

    def dehydrate_first_responded_at(self, ticket: Ticket) -> str:
        return _iso(ticket.first_responded_at)

    def dehydrate_resolved_at(self, ticket: Ticket) -> str:
        return _iso(ticket.resolved_at)

    # --- import --------------------------------------------------------------------

    def get_import_fields(self):
        # The preview's columns and the "this importer will import" list: the import's columns.
        return [self.fields[c] for c in IMPORT_COLUMNS]

    def _rows(self, dataset) -> list[_Row]:
        headers = [_cell(h).lower() for h in dataset.headers or []]
        rows = []
        for number, values in enumerate(dataset, 1):
            raw = dict(zip(headers, values, strict=False))
            data = {c: _cell(raw.get(c)) for c in IMPORT_COLUMNS}
            created = raw.get("created_at")
            rows.append(_Row(number, data, created_at=created.strip() if isinstance(created, str) else created))
        return rows

    def import_data_inner(self, dataset, dry_run, raise_errors, using_transactions, collect_failed_rows, **kwargs):
        result = self.get_result_class()()
        result.diff_headers = self.get_diff_headers()
        result.total_rows = len(dataset)
        actor = self.actor if self.actor is not None else kwargs.get("user")
        rows = self._rows(dataset)
        if len(rows) > MAX_IMPORT_ROWS:
            row = rows[MAX_IMPORT_ROWS]
            row.error(
                NON_FIELD_ERRORS,
                _("This file has %(n)s rows; import at most %(max)s at a time.")
                % {"n": len(rows), "max": MAX_IMPORT_ROWS},
            )
            self._row_result(result, row, RowResult.IMPORT_TYPE_INVALID, raise_errors)
            return result
        lookups = _Lookups(rows)
        now = timezone.now()
        for row in rows:
            _check_choices(row)
            _check_text(row)
        _check_refs(rows, lookups, now)
        if any(row.errors for row in rows):
            # Nothing is opened when any row is refused: the preview lists every problem at once.
            for row in rows:
                self._row_result(result, row, RowResult.IMPORT_TYPE_INVALID if row.errors else None, raise_errors)
            return result
        failed = False
        for row in rows:
            kind = RowResult.IMPORT_TYPE_INVALID if failed else self._open(row, lookups, actor, now)
            failed = failed or kind == RowResult.IMPORT_TYPE_INVALID
            self._row_result(result, row, kind, raise_errors)
        return result

    def _open(self, row: _Row, lookups: _Lookups, actor, now: datetime) -> str:
        data = row.data
        choice = {c: data[c].lower() or None for c in _CHOICES}
        try:
            opened = services.ticket_open(
                customer=lookups.customers.get(data["customer"]) if data["customer"] else None,
                source=choice["source"] or Source.IMPORT,
                category=choice["category"],
                priority=choice["priority"],
                impact=choice["impact"] or Impact.ONE,
                severity=choice["severity"] or Severity.MINOR,
                difficulty=choice["difficulty"] or Difficulty.EASY,
                subject=data["subject"],
                body=data["body"],
                team=lookups.teams.get(data["team"].lower()) if data["team"] else None,
                idempotency_key=f"{REF_PREFIX}{data['external_ref']}" if data["external_ref"] else None,
                actor=actor,
                now=row.created_at or now,
            )
        except ApplicationError as exc:
            row.error(_column_of(exc), exc.message)
            return RowResult.IMPORT_TYPE_INVALID
        return RowResult.IMPORT_TYPE_SKIP if opened.replayed else RowResult.IMPORT_TYPE_NEW

    def _row_result(self, result, row: _Row, kind: str | None, raise_errors: bool) -> None:
        """One row of the preview: its errors, or its cells and whether it opens a ticket.
        A row not reached (after another row's refusal) is listed without errors."""
        row_result = self.get_row_result_class()()
        if row.errors:
            row_result.import_type = RowResult.IMPORT_TYPE_INVALID
            row_result.validation_error = ValidationError(row.errors)
            result.append_invalid_row(row.number, row.data, row_result.validation_error)
            if raise_errors:
                raise RowImportError(row_result.validation_error, number=row.number, row=row.data)
        else:
            row_result.import_type = (
                kind if kind and kind != RowResult.IMPORT_TYPE_INVALID else RowResult.IMPORT_TYPE_SKIP
            )
            row_result.diff = [row.data[c] for c in IMPORT_COLUMNS]
        result.increment_row_result_total(row_result)
        result.append_row_result(row_result)

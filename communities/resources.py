"""Member lists in and out of the admin (django-import-export, CSV and XLSX).

**Import.** Columns (a header row; unknown columns are ignored, so an export's extra
columns do no harm): ``group`` (the group's code), ``customer`` (the customer's
``external_id``), ``role`` (``member``, ``admin`` or ``koc``; empty is ``member``),
``joined_at`` (optional: ISO 8601 with a UTC offset, 1970–2100, not in the future;
empty is the time of the import), ``platform_member_id`` (optional) and ``invited_by``
(the inviting customer's ``external_id``, optional).

Every row is checked first — unknown group (or one the importing operator may not
see), a group they may not manage, unknown customer or inviter, a member inviting
themselves, unknown role, a bad date, the same member twice in the file, a customer
already in the group — and each problem is shown on its row in the preview; a file with
any bad row writes nothing. Then the rows are one call of
``communities.services.groups.members_join_many`` (``member_join``'s checks; the spans
and their audit rows in two inserts, whatever the number of rows), under the importing
operator; the preview runs those calls inside the import's transaction, which
the library rolls back, so it writes nothing.

Re-importing a file: a customer already in the group is refused (``already_member``),
not joined twice — remove the rows of those already in, or let them leave first.

**Export.** The import's columns plus ``left_at`` and ``left_reason``: every span, so a
member who left and rejoined is two rows."""

from dataclasses import dataclass, field
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

from . import access
from .models import CommunityGroup, MemberRole, Membership
from .services import groups as group_services

IMPORT_COLUMNS = ["group", "customer", "role", "joined_at", "platform_member_id", "invited_by"]
EXPORT_COLUMNS = ["id", *IMPORT_COLUMNS, "left_at", "left_reason"]
#: the most rows one file may hold: each is checked and joined, in the preview and again on confirm
MAX_IMPORT_ROWS = 10_000
FUTURE_SLACK = timedelta(minutes=5)
PLATFORM_ID_MAX = Membership._meta.get_field("platform_member_id").max_length
_LOOKUP_CHUNK = 500
#: a group code or customer external id (both are at most 64 characters)
KEY_MAX = 64


def _cell(value: Any) -> str:
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
    joined_at: Any = None
    errors: dict[str, list[str]] = field(default_factory=dict)

    def error(self, column: str, message: str) -> None:
        self.errors.setdefault(column, []).append(message)


class _Lookups:
    """The groups, customers and open spans a file names, read once per file."""

    def __init__(self, rows: list[_Row], actor):
        codes = sorted({r.data["group"] for r in rows if r.data["group"]})
        visible = access.groups_visible(actor) if actor is not None else CommunityGroup.objects.all()
        self.groups = {g.code: g for g in visible.filter(code__in=codes)}
        self.manageable = {
            code for code, g in self.groups.items() if actor is None or access.MANAGE in access.rights_of(actor, g)
        }
        ids = sorted({r.data[c] for r in rows for c in ("customer", "invited_by") if r.data[c]})
        self.customers: dict[str, Customer] = {}
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            chunk = ids[start : start + _LOOKUP_CHUNK]
            self.customers.update({c.external_id: c for c in Customer.objects.filter(external_id__in=chunk)})
        group_ids = [g.pk for g in self.groups.values()]
        customer_ids = [c.pk for c in self.customers.values()]
        self.open_spans: set[tuple[int, int]] = set()
        for start in range(0, len(customer_ids), _LOOKUP_CHUNK):
            chunk = customer_ids[start : start + _LOOKUP_CHUNK]
            self.open_spans.update(
                Membership.objects.filter(group_id__in=group_ids, customer_id__in=chunk, left_at__isnull=True)
                .values_list("group_id", "customer_id")
                .iterator()
            )


def _joined_at(raw: Any, now: datetime) -> tuple[datetime | None, str | None]:
    if raw is None or raw == "":
        return None, None
    parsed = raw if isinstance(raw, datetime) else parse_datetime(raw) if isinstance(raw, str) else None
    # A spreadsheet's date cell has no UTC offset: the file must say which instant it means.
    if parsed is None or timezone.is_naive(parsed):
        return None, _("joined_at must be an ISO 8601 date and time with a UTC offset, e.g. 2026-01-02T10:00:00+08:00.")
    if not instant_in_range(parsed):
        return None, _("joined_at must lie between %(min)s and %(max)s.") % {
            "min": INSTANT_MIN.isoformat(),
            "max": INSTANT_MAX.isoformat(),
        }
    if parsed > now + FUTURE_SLACK:
        return None, _("joined_at lies in the future.")
    return parsed, None


def _check_cells(row: _Row, now: datetime) -> None:
    data = row.data
    for column in ("group", "customer", "invited_by"):
        if len(data[column]) > KEY_MAX or has_bad_text(data[column]):
            row.error(column, _("The %(column)s is at most %(n)s plain characters.") % {"column": column, "n": KEY_MAX})
            data[column] = ""  # not looked up
        elif not data[column] and column != "invited_by":
            row.error(column, _("The %(column)s is empty.") % {"column": column})
    role = data["role"].lower()
    if role and role not in MemberRole.values:
        row.error(
            "role",
            _("Unknown role %(role)s; one of %(roles)s.") % {"role": role, "roles": ", ".join(MemberRole.values)},
        )
    pid = data["platform_member_id"]
    if len(pid) > PLATFORM_ID_MAX or has_bad_text(pid):
        row.error(
            "platform_member_id",
            _("The platform member id is at most %(n)s plain characters.") % {"n": PLATFORM_ID_MAX},
        )
    joined_at, problem = _joined_at(row.joined_at, now)
    row.joined_at = joined_at
    if problem:
        row.error("joined_at", problem)


def _check_refs(rows: list[_Row], lookups: _Lookups) -> None:
    first_seen: dict[tuple[str, str], int] = {}
    for row in rows:
        code, customer, inviter = row.data["group"], row.data["customer"], row.data["invited_by"]
        group = lookups.groups.get(code)
        if code and group is None:
            row.error("group", _("Unknown group %(code)s.") % {"code": code})
        elif group is not None and code not in lookups.manageable:
            row.error("group", _("You may not add members to the group %(code)s.") % {"code": code})
        for column, external_id in (("customer", customer), ("invited_by", inviter)):
            if external_id and external_id not in lookups.customers:
                row.error(column, _("Unknown customer %(id)s.") % {"id": external_id})
        if inviter and inviter == customer:
            row.error("invited_by", _("A member cannot invite themselves."))
        if code and customer:
            first = first_seen.setdefault((code, customer), row.number)
            if first != row.number:
                row.error(
                    "customer",
                    _("%(id)s appears twice for this group in the file (first at row %(row)s).")
                    % {"id": customer, "row": first},
                )
        known = lookups.customers.get(customer)
        if group is not None and known is not None and (group.pk, known.pk) in lookups.open_spans:
            row.error("customer", _("%(id)s is already in %(group)s.") % {"id": customer, "group": group.name})


def _column_of(exc: ApplicationError) -> str:
    details = exc.details if isinstance(exc.details, dict) else {}
    if exc.code == "already_member":
        return "customer"
    if exc.code in ("unknown_group", "permission_denied"):
        return "group"
    for column in IMPORT_COLUMNS:
        if column in details:
            return column
    return NON_FIELD_ERRORS


class MembershipResource(resources.ModelResource):
    """Imports through ``members_join_many`` only (see the module docstring); exports spans
    with their group, customer and inviter read in the export's one query."""

    group = fields.Field(column_name="group")
    customer = fields.Field(column_name="customer")
    invited_by = fields.Field(column_name="invited_by")

    class Meta:
        model = Membership
        fields = EXPORT_COLUMNS
        export_order = EXPORT_COLUMNS
        import_id_fields = []
        use_transactions = True

    def __init__(self, *, actor=None, **kwargs):
        super().__init__(**kwargs)
        self.actor = actor

    # --- export --------------------------------------------------------------------

    def filter_export(self, queryset, **kwargs):
        return queryset.select_related("group", "customer", "invited_by")

    def dehydrate_group(self, span: Membership) -> str:
        return span.group.code

    def dehydrate_customer(self, span: Membership) -> str:
        return span.customer.external_id

    def dehydrate_invited_by(self, span: Membership) -> str:
        return span.invited_by.external_id if span.invited_by else ""

    def dehydrate_joined_at(self, span: Membership) -> str:
        return _iso(span.joined_at)

    def dehydrate_left_at(self, span: Membership) -> str:
        return _iso(span.left_at)

    # --- import --------------------------------------------------------------------

    def get_import_fields(self):
        return [self.fields[c] for c in IMPORT_COLUMNS]

    def _rows(self, dataset) -> list[_Row]:
        headers = [_cell(h).lower() for h in dataset.headers or []]
        rows = []
        for number, values in enumerate(dataset, 1):
            raw = dict(zip(headers, values, strict=False))
            data = {c: _cell(raw.get(c)) for c in IMPORT_COLUMNS}
            joined = raw.get("joined_at")
            rows.append(_Row(number, data, joined_at=joined.strip() if isinstance(joined, str) else joined))
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
        now = timezone.now()
        for row in rows:
            _check_cells(row, now)
        lookups = _Lookups(rows, actor)
        _check_refs(rows, lookups)
        if any(row.errors for row in rows):
            # Nothing is joined when any row is refused: the preview lists every problem at once.
            for row in rows:
                self._row_result(result, row, RowResult.IMPORT_TYPE_INVALID if row.errors else None, raise_errors)
            return result
        try:
            group_services.members_join_many(joins=[self._join(row, lookups, now) for row in rows], actor=actor)
        except ApplicationError as exc:
            # Every row was checked above: only a join racing this import gets here.
            rows[0].error(_column_of(exc), exc.message)
            for row in rows:
                self._row_result(result, row, RowResult.IMPORT_TYPE_INVALID, raise_errors)
            return result
        for row in rows:
            self._row_result(result, row, RowResult.IMPORT_TYPE_NEW, raise_errors)
        return result

    @staticmethod
    def _join(row: _Row, lookups: _Lookups, now: datetime) -> group_services.Join:
        data = row.data
        return group_services.Join(
            group=lookups.groups[data["group"]],
            customer=lookups.customers[data["customer"]],
            role=data["role"].lower() or MemberRole.MEMBER,
            joined_at=row.joined_at or now,
            platform_member_id=data["platform_member_id"],
            invited_by=lookups.customers.get(data["invited_by"]) if data["invited_by"] else None,
        )

    def _row_result(self, result, row: _Row, kind: str | None, raise_errors: bool) -> None:
        """One row of the preview: its errors, or its cells and that it joins. A row not
        reached (after another row's refusal) is listed without errors."""
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

"""Admin import/export of customers and orders (django-import-export).

Imported rows are validated by the same pydantic rows as the REST API
(``users.rows``) and written by the API's batch services
(``customers_upsert_batch``, ``orders_upsert_batch``), in batches, so a file and a
batch obey one set of rules and have the same effects. Each import runs
in one transaction: a file with any bad row imports nothing (the library rolls
back when a row has errors; ``rollback_on_validation_errors`` is forced on by
the admin, see ``users.admin``).

Columns are named like the API fields; consent is one column per channel
(``consent_sms`` ...), tags one comma-separated column. An empty cell, like a
missing column, leaves the stored value as it is. Exports mask phone and email
unless the resource is built with ``pii=True`` (the admin passes whether the
exporting user has ``users.view_pii``); a masked export cannot be re-imported
over the real values, because a masked phone or email fails validation.
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from import_export import fields, resources, widgets
from import_export.exceptions import ImportError as RowImportError
from import_export.results import RowResult
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from core.batch import ValidatedBatch
from core.pii import mask_email, mask_phone
from core.validation import TEXT_CELLS

from . import services
from .models import CONSENT_FIELDS, CUSTOMER_SCALAR_FIELDS, Customer, Order
from .rows import CustomerRow, OrderRow

#: rows sent to the batch service at a time (the API's batch limit is 1,000)
IMPORT_BATCH_SIZE = 500


def _cell(value: Any) -> Any:
    """A spreadsheet cell as the API would have received it; ``None`` means "not sent"."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, float) and value.is_integer():
        # XLSX stores ids and phone numbers typed as numbers as floats.
        return str(int(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _iso(value: date | datetime | None) -> str:
    return value.isoformat() if value else ""


class _MaskedWidget(widgets.CharWidget):
    """Renders a masked value, for exports and import previews seen without ``users.view_pii``."""

    def __init__(self, mask, **kwargs):
        super().__init__(**kwargs)
        self.mask = mask

    def render(self, value, obj=None, **kwargs):
        return self.mask(value)


def pydantic_errors(exc: PydanticValidationError, *, column_for) -> dict[str, list[str]]:
    """A row model's validation errors by file column (or form field)."""
    errors: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False):
        errors.setdefault(column_for([str(part) for part in err["loc"]]), []).append(err["msg"])
    return errors


class _RowValidatedResource(resources.ModelResource):
    """Imports a file the way the API imports a batch: each row is validated with the
    ``users.rows`` pydantic model, then the rows go to the API's batch service
    (``write_batch``) ``IMPORT_BATCH_SIZE`` at a time — a fixed number of queries per
    batch, whatever its size, and the service's own side effects (audit rows under
    the importing operator, roll-ups and points queued on commit). The service's row
    errors (unknown customer, unknown referrer ...) are shown as the preview's row
    errors. The dry-run preview runs the same writes inside the import's transaction,
    which the library rolls back, so it writes (and queues) nothing."""

    row_model: type[BaseModel]

    #: field name → masking function applied when the resource is built without ``pii``
    masked_fields: dict = {}

    def __init__(self, *, pii: bool = False, actor=None, **kwargs):
        super().__init__(**kwargs)
        self.pii = pii
        self.actor = actor
        if not pii:
            for name, mask in self.masked_fields.items():
                self.fields[name].widget = _MaskedWidget(mask)

    def row_input(self, row: dict) -> dict[str, Any]:
        """The file row as the API's row model expects it (each resource defines it)."""
        raise TypeError(f"{type(self).__name__} must define row_input()")

    def write_batch(self, batch: ValidatedBatch, *, actor) -> None:
        """Sends validated rows to the API's batch service (each resource defines it)."""
        raise TypeError(f"{type(self).__name__} must define write_batch()")

    def order_rows(self, rows: list[tuple[int, dict]]) -> list[tuple[int, dict]]:
        """The order the rows are written in (file order unless a resource needs another)."""
        return rows

    def validate_row(self, row: dict) -> BaseModel:
        try:
            # Text cells: a file has no booleans, so "1" / "true" are converted (the API refuses them).
            return self.row_model.model_validate(self.row_input(row), context=TEXT_CELLS)
        except PydanticValidationError as exc:
            raise ValidationError(pydantic_errors(exc, column_for=self.column_for)) from None

    def column_for(self, loc: list[str]) -> str:
        return loc[0] if loc else NON_FIELD_ERRORS

    def import_data_inner(self, dataset, dry_run, raise_errors, using_transactions, collect_failed_rows, **kwargs):
        result = self.get_result_class()()
        result.diff_headers = self.get_diff_headers()
        result.total_rows = len(dataset)
        try:
            self._check_import_id_fields(dataset.headers)
        except Exception as exc:  # the library's own report of a file without the id column
            self.handle_import_error(result, exc, raise_errors)
            return result
        actor = self.actor if self.actor is not None else kwargs.get("user")
        rows = [(number, dict(zip(dataset.headers, values, strict=False))) for number, values in enumerate(dataset, 1)]
        rows = self.order_rows(rows)
        first_seen: dict[str, int] = {}
        for start in range(0, len(rows), IMPORT_BATCH_SIZE):
            chunk = rows[start : start + IMPORT_BATCH_SIZE]
            errors: dict[int, dict[str, list[str]]] = {}
            validated = []
            for number, row in chunk:
                try:
                    item = self.validate_row(row)
                except ValidationError as exc:
                    errors[number] = exc.message_dict
                    continue
                # The same id twice in one file is ambiguous, as in an API batch.
                first = first_seen.setdefault(item.external_id, number)
                if first != number:
                    errors[number] = {
                        "external_id": [
                            f"Duplicate external_id {item.external_id!r} in this file (first at row {first})."
                        ]
                    }
                    continue
                validated.append((number, item))
            stored = set(
                self._meta.model.objects.filter(
                    external_id__in=[item.external_id for _, item in validated]
                ).values_list("external_id", flat=True)
            )
            batch = ValidatedBatch(rows=validated, errors=[], atomic=False)
            if validated:
                self.write_batch(batch, actor=actor)
            for error in batch.errors:
                errors.setdefault(error.index, {}).setdefault(self.column_for(error.field.split(".")), []).append(
                    error.message
                )
            ids = {number: item.external_id for number, item in validated}
            for number, row in chunk:
                self._row_result(result, number, row, errors.get(number), ids.get(number) in stored, raise_errors)
        return result

    def _row_result(self, result, number: int, row: dict, errors: dict | None, existed: bool, raise_errors: bool):
        row_result = self.get_row_result_class()()
        if errors:
            row_result.import_type = RowResult.IMPORT_TYPE_INVALID
            row_result.validation_error = ValidationError(errors)
            result.append_invalid_row(number, row, row_result.validation_error)
            if raise_errors:
                raise RowImportError(row_result.validation_error, number=number, row=row)
        else:
            row_result.import_type = RowResult.IMPORT_TYPE_UPDATE if existed else RowResult.IMPORT_TYPE_NEW
            # The preview shows the file's cells (masked as in the export), not a query per row.
            row_result.diff = [self._preview_cell(field, row) for field in self.get_import_fields()]
        result.increment_row_result_total(row_result)
        result.append_row_result(row_result)

    def _preview_cell(self, field, row: dict) -> str:
        value = _cell(row.get(field.column_name))
        if value is None:
            return ""
        mask = None if self.pii else self.masked_fields.get(field.column_name)
        return mask(str(value)) if mask else str(value)


class CustomerResource(_RowValidatedResource):
    row_model = CustomerRow
    masked_fields = {"phone": mask_phone, "email": mask_email}

    external_id = fields.Field(attribute="external_id", column_name="external_id")
    referred_by = fields.Field(
        attribute="referred_by", column_name="referred_by", widget=widgets.ForeignKeyWidget(Customer, "external_id")
    )
    tags = fields.Field(column_name="tags")

    def order_rows(self, rows: list[tuple[int, dict]]) -> list[tuple[int, dict]]:
        """Referrers first: a file is written ``IMPORT_BATCH_SIZE`` rows at a time, and a
        customer referred by one further down the file would otherwise name a referrer
        not stored yet. Rows are sorted (stably) by the length of their chain of
        referrers inside the file; a cycle keeps its members at the end, together."""
        ext = {number: _cell(row.get("external_id")) for number, row in rows}
        in_file = {str(e) for e in ext.values() if e is not None}
        parent = {}
        for number, row in rows:
            ref, me = _cell(row.get("referred_by")), ext[number]
            if ref is not None and me is not None and str(ref) in in_file and str(ref) != str(me):
                parent[str(me)] = str(ref)

        def depth(node: str) -> int:
            steps = 0
            while node in parent and steps <= len(parent):
                node, steps = parent[node], steps + 1
            return steps

        return sorted(rows, key=lambda r: depth(str(ext[r[0]])) if ext[r[0]] is not None else 0)

    class Meta:
        model = Customer
        import_id_fields = ["external_id"]
        fields = ["external_id", *CUSTOMER_SCALAR_FIELDS, "referred_by", "tags", *CONSENT_FIELDS.values()]
        export_order = fields
        use_transactions = True
        skip_unchanged = False
        report_skipped = True

    def row_input(self, row: dict) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name in ["external_id", *CUSTOMER_SCALAR_FIELDS, "referred_by"]:
            value = _cell(row.get(name))
            if value is not None:
                data[name] = value
        if "tags" in row and _cell(row["tags"]) is not None:
            data["tags"] = [t for t in (part.strip() for part in str(row["tags"]).split(",")) if t]
        consent = {}
        for channel, field_name in CONSENT_FIELDS.items():
            value = _cell(row.get(field_name))
            if value is not None:
                consent[channel] = value
        if consent:
            data["consent"] = consent
        return data

    def column_for(self, loc: list[str]) -> str:
        if loc and loc[0] == "consent" and len(loc) > 1:
            return CONSENT_FIELDS.get(loc[1], "consent")
        return super().column_for(loc)

    def write_batch(self, batch: ValidatedBatch, *, actor) -> None:
        services.customers_upsert_batch(batch=batch, actor=actor)

    def filter_export(self, queryset, **kwargs):
        return queryset.select_related("referred_by").prefetch_related("tags")

    def dehydrate_tags(self, customer: Customer) -> str:
        return ",".join(sorted(t.tag for t in customer.tags.all()))

    def dehydrate_birthday(self, customer: Customer) -> str:
        return _iso(customer.birthday)

    def dehydrate_signup_at(self, customer: Customer) -> str:
        return _iso(customer.signup_at)


class OrderResource(_RowValidatedResource):
    row_model = OrderRow

    external_id = fields.Field(attribute="external_id", column_name="external_id")
    customer = fields.Field(
        attribute="customer", column_name="customer", widget=widgets.ForeignKeyWidget(Customer, "external_id")
    )

    class Meta:
        model = Order
        import_id_fields = ["external_id"]
        fields = ["external_id", "customer", "amount", "currency", "status", "occurred_at"]
        export_order = fields
        use_transactions = True

    def row_input(self, row: dict) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name in self._meta.fields:
            value = _cell(row.get(name))
            if isinstance(value, float):
                value = Decimal(str(value))
            if value is not None:
                data[name] = value
        return data

    def write_batch(self, batch: ValidatedBatch, *, actor) -> None:
        # Roll-ups and purchase points are queued by the service, on commit, as for the API.
        services.orders_upsert_batch(batch=batch, actor=actor)

    def filter_export(self, queryset, **kwargs):
        return queryset.select_related("customer")

    def dehydrate_amount(self, order: Order) -> str:
        return str(order.amount)

    def dehydrate_occurred_at(self, order: Order) -> str:
        return _iso(order.occurred_at)

"""Admin import/export of customers and orders (django-import-export).

Imported rows are validated by the same pydantic rows as the REST API
(``users.rows``), so a file and a batch obey one set of rules. Each import runs
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
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from core.pii import mask_email, mask_phone

from . import services
from .models import CONSENT_FIELDS, Customer, CustomerTag, Order
from .rows import CustomerRow, OrderRow

_CUSTOMER_SCALARS = ["name", "nickname", "phone", "email", "gender", "birthday", "city", "timezone",
                     "signup_at", "channel", "do_not_contact"]


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


class _RowValidatedResource(resources.ModelResource):
    """Validates each imported row with a ``users.rows`` pydantic model before it is applied."""

    row_model: type[BaseModel]

    #: field name → masking function applied when the resource is built without ``pii``
    masked_fields: dict = {}

    def __init__(self, *, pii: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.pii = pii
        self._seen_ids: dict[str, int] = {}
        if not pii:
            for name, mask in self.masked_fields.items():
                self.fields[name].widget = _MaskedWidget(mask)

    def row_input(self, row: dict) -> dict[str, Any]:
        """The file row as the API's row model expects it (each resource defines it)."""
        raise TypeError(f"{type(self).__name__} must define row_input()")

    def apply(self, instance, validated: BaseModel) -> None:
        """Copies the validated values onto the instance (each resource defines it)."""
        raise TypeError(f"{type(self).__name__} must define apply()")

    def validate_row(self, row: dict) -> BaseModel:
        try:
            return self.row_model.model_validate(self.row_input(row))
        except PydanticValidationError as exc:
            errors: dict[str, list[str]] = {}
            for err in exc.errors(include_url=False):
                loc = [str(part) for part in err["loc"]]
                column = self.column_for(loc)
                errors.setdefault(column, []).append(err["msg"])
            raise ValidationError(errors) from None

    def column_for(self, loc: list[str]) -> str:
        return loc[0] if loc else NON_FIELD_ERRORS

    def get_instance(self, instance_loader, row):
        external_id = _cell(row.get("external_id"))
        if not external_id:
            return None
        return self._meta.model.objects.filter(external_id=str(external_id)).first()

    def import_instance(self, instance, row, **kwargs):
        validated = self.validate_row(row)
        # The same id twice in one file is ambiguous, as in an API batch.
        first = self._seen_ids.setdefault(validated.external_id, kwargs.get("row_number", 0))
        if first != kwargs.get("row_number", 0):
            raise ValidationError({"external_id": [f"Duplicate external_id {validated.external_id!r} in this file (first at row {first})."]})
        self.apply(instance, validated)


class CustomerResource(_RowValidatedResource):
    row_model = CustomerRow
    masked_fields = {"phone": mask_phone, "email": mask_email}

    external_id = fields.Field(attribute="external_id", column_name="external_id")
    referred_by = fields.Field(
        attribute="referred_by", column_name="referred_by", widget=widgets.ForeignKeyWidget(Customer, "external_id")
    )
    tags = fields.Field(column_name="tags")

    class Meta:
        model = Customer
        import_id_fields = ["external_id"]
        fields = ["external_id", *_CUSTOMER_SCALARS, "referred_by", "tags", *CONSENT_FIELDS.values()]
        export_order = fields
        use_transactions = True
        skip_unchanged = False
        report_skipped = True

    def row_input(self, row: dict) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name in ["external_id", *_CUSTOMER_SCALARS, "referred_by"]:
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

    def apply(self, instance: Customer, validated: CustomerRow) -> None:
        sent = validated.model_fields_set
        instance.external_id = validated.external_id
        for name in _CUSTOMER_SCALARS:
            value = getattr(validated, name)
            if name in sent and value is not None:
                setattr(instance, name, value)
        if validated.consent is not None:
            for channel, value in validated.consent.model_dump(exclude_none=True).items():
                setattr(instance, CONSENT_FIELDS[channel], value)
        if validated.referred_by:
            if validated.referred_by == validated.external_id:
                raise ValidationError({"referred_by": ["A customer cannot refer themself."]})
            referrer = Customer.objects.filter(external_id=validated.referred_by).first()
            if referrer is None:
                raise ValidationError({"referred_by": [f"Unknown referrer {validated.referred_by!r}."]})
            instance.referred_by = referrer
        instance._import_tags = validated.tags

    def after_save_instance(self, instance: Customer, row, **kwargs):
        tags = getattr(instance, "_import_tags", None)
        if tags is None:
            return
        stored = sorted(instance.tags.values_list("tag", flat=True))
        if stored != tags:
            CustomerTag.objects.filter(customer=instance).delete()
            CustomerTag.objects.bulk_create([CustomerTag(customer=instance, tag=tag) for tag in tags])

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

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._touched_customers: set[int] = set()
        self._touched_orders: set[int] = set()

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

    def apply(self, instance: Order, validated: OrderRow) -> None:
        try:
            customer = self.fields["customer"].widget.clean(validated.customer)
        except Customer.DoesNotExist:
            raise ValidationError({"customer": [f"Unknown customer {validated.customer!r}."]}) from None
        instance._original_customer_id = instance.customer_id
        instance.external_id = validated.external_id
        instance.customer = customer
        instance.amount = validated.amount
        instance.currency = validated.currency
        instance.status = validated.status
        instance.occurred_at = validated.occurred_at

    def after_save_instance(self, instance: Order, row, **kwargs):
        self._touched_orders.add(instance.pk)
        self._touched_customers.add(instance.customer_id)
        if getattr(instance, "_original_customer_id", None):
            self._touched_customers.add(instance._original_customer_id)

    def after_import(self, dataset, result, **kwargs):
        super().after_import(dataset, result, **kwargs)
        if kwargs.get("dry_run") or result.has_errors() or result.has_validation_errors():
            return
        if self._touched_orders:
            # The same follow-up work as an API batch (roll-ups, purchase points), queued on commit.
            services._after_orders_changed(
                customer_ids=sorted(self._touched_customers), order_ids=sorted(self._touched_orders)
            )

    def filter_export(self, queryset, **kwargs):
        return queryset.select_related("customer")

    def dehydrate_amount(self, order: Order) -> str:
        return str(order.amount)

    def dehydrate_occurred_at(self, order: Order) -> str:
        return _iso(order.occurred_at)

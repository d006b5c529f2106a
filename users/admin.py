"""Admin for customers, orders and events, with CSV/XLSX import and export.

Phone numbers and emails are masked for admins without ``users.view_pii``: in
the list, the change form (read-only there), exports and import previews.
Customers, orders and events are big tables: relations use raw-id inputs, the
lists do not count every row, and nothing renders a select of all customers.

One write path: a customer's save (and its tag inline) is a one-row
``customers_upsert_batch``, an order's edit is ``order_update`` (one-row
``orders_upsert_batch``: the roll-ups and purchase points follow on commit, as
for the API), an event added here goes through ``events_append_batch`` (its
dedupe key computed, its earning rules queued). Each writes its audit row
(from → to). Events are facts: they are added, never edited or deleted here;
customers and orders are not deleted here either (no service removes them: a
refund is a status, and deleting a customer would orphan its ledger history).
"""

from django import forms
from django.contrib import admin, messages
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from import_export.admin import ImportExportModelAdmin
from pydantic import ValidationError as PydanticValidationError

from core import exports
from core.admin_base import DistinctValuesFilter, ScaledListMixin, display_name_column, display_values_filter
from core.batch import ValidatedBatch
from core.json import BoundedJSONDecoder
from core.pii import mask_email, mask_phone
from core.validation import validate_form_instant

from .models import CONSENT_FIELDS, Customer, CustomerTag, Event, Order
from .resources import CustomerResource, OrderResource, pydantic_errors
from .rows import CustomerRow, EventRow, OrderRow
from .selectors import customer_search_q
from .services import (
    customer_tags_set,
    customers_upsert_batch,
    event_dedupe_key,
    events_append_batch,
    order_update,
    orders_upsert_batch,
)

_MASKS = {"phone": mask_phone, "email": mask_email}


def _can_see_pii(request) -> bool:
    return request.user.has_perm("users.view_pii")


class _ImportExportAdmin(ScaledListMixin, ImportExportModelAdmin):
    """CSV and XLSX, a dry-run preview before anything is written, and all-or-nothing files."""

    import_formats = export_formats = exports.FORMATS  # no cell exported as a live formula
    # The services write an audit row per created or changed row, under the importing operator.
    skip_admin_log = True

    def get_resource_kwargs(self, request, *args, **kwargs):
        return {**super().get_resource_kwargs(request, *args, **kwargs), "pii": _can_see_pii(request)}

    def get_import_resource_kwargs(self, request, *args, **kwargs):
        # The import writes through the services, which audit under the importing operator.
        return {**super().get_import_resource_kwargs(request, *args, **kwargs), "actor": request.user}

    def has_delete_permission(self, request, obj=None):
        return False  # no service deletes customers or orders (see the module docstring)

    def get_import_data_kwargs(self, **kwargs):
        kwargs = super().get_import_data_kwargs(**kwargs)
        # One bad row (even a validation error) rolls the whole file back, on the
        # confirm step too, in case the file was changed behind the preview.
        kwargs["use_transactions"] = True
        kwargs["rollback_on_validation_errors"] = True
        return kwargs

    def process_result(self, result, request):
        if result.has_errors() or result.has_validation_errors():
            messages.error(request, _("The file has invalid rows; nothing was imported. Check it and import again."))
            opts = self.model._meta
            return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_import"))
        return super().process_result(result, request)

    def has_import_permission(self, request):
        return self.has_add_permission(request) and self.has_change_permission(request)

    def has_export_permission(self, request):
        return self.has_view_permission(request)


class CustomerTagInline(admin.TabularInline):
    model = CustomerTag
    extra = 0


class _RowForm(forms.ModelForm):
    """Validates the form's values with the API's row model too, so the admin obeys the
    API's rules; ``self.row`` is what the save sends to the service."""

    row_model: type

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The accepted range of instants (core.validation), checked on the form field itself so
        # it is reported even when another field fails first.
        for field in self.fields.values():
            if isinstance(field, forms.DateTimeField | forms.SplitDateTimeField):
                field.validators.append(validate_form_instant)
            elif isinstance(field, forms.JSONField):
                field.decoder = BoundedJSONDecoder  # nested at most 64 deep (core.json)

    def row_data(self) -> dict:
        raise TypeError(f"{type(self).__name__} must define row_data()")

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            self.row = self.row_model.model_validate(self.row_data())
        except PydanticValidationError as exc:
            for column, messages_ in pydantic_errors(exc, column_for=self.column_for).items():
                self.add_error(column if column in self.fields else None, messages_)
        return cleaned

    def column_for(self, loc: list[str]) -> str:
        if loc and loc[0] == "consent" and len(loc) > 1:
            return CONSENT_FIELDS.get(loc[1], "consent")
        return loc[0] if loc else "__all__"


class CustomerAdminForm(_RowForm):
    row_model = CustomerRow

    def row_data(self) -> dict:
        cleaned = self.cleaned_data
        # A new customer sends every field; an edit only what changed (the rest keeps its value).
        names = [n for n in cleaned if self.instance.pk is None or n in self.changed_data]
        data = {"external_id": cleaned.get("external_id") or self.instance.external_id}
        consent = {}
        for name in names:
            value = cleaned[name]
            if name in CONSENT_FIELDS.values():
                consent[name.removeprefix("consent_")] = value
            elif name == "referred_by":
                data[name] = value.external_id if value else None
            elif name != "external_id":
                data[name] = value
        if consent:
            data["consent"] = consent
        if data.get("referred_by") and data["referred_by"] == data["external_id"]:
            raise forms.ValidationError({"referred_by": _("A customer cannot refer themself.")})
        return data


class OrderAdminForm(_RowForm):
    row_model = OrderRow

    def row_data(self) -> dict:
        cleaned = self.cleaned_data
        # Read-only (not in the form) on an existing order: it stays with its customer.
        customer = cleaned.get("customer") or (self.instance.customer if self.instance.pk else None)
        return {
            "external_id": cleaned.get("external_id") or self.instance.external_id,
            "customer": customer.external_id if customer else "",
            "amount": cleaned.get("amount"),
            "currency": cleaned.get("currency") or None,
            "status": cleaned.get("status"),
            "occurred_at": cleaned.get("occurred_at"),
        }


class EventAdminForm(_RowForm):
    row_model = EventRow

    def row_data(self) -> dict:
        cleaned = self.cleaned_data
        customer = cleaned.get("customer")
        return {
            "customer": customer.external_id if customer else "",
            "type": cleaned.get("type"),
            "occurred_at": cleaned.get("occurred_at"),
            "properties": cleaned.get("properties") or {},
            "external_id": cleaned.get("external_id") or None,
        }


def _one_row(row) -> ValidatedBatch:
    return ValidatedBatch(rows=[(0, row)], errors=[], atomic=True)


def _copy_stored(obj, stored) -> None:
    """The admin logs and redirects with ``obj``: make it the row the service wrote."""
    for field in type(stored)._meta.concrete_fields:
        setattr(obj, field.attname, getattr(stored, field.attname))
    obj._state.adding = False


@admin.register(Customer)
class CustomerAdmin(_ImportExportAdmin):
    form = CustomerAdminForm
    resource_classes = [CustomerResource]
    list_display = [
        "external_id",
        "name",
        "nickname",
        "phone",
        "email",
        "gender",
        "city",
        display_name_column("channel", "channel", _("acquisition channel")),
        "do_not_contact",
        "paid_orders",
        "last_order_at",
        "updated_at",
    ]
    list_display_links = ["external_id"]
    search_fields = ["external_id", "name", "nickname", "phone", "email"]  # as in users.selectors.customer_search_q

    def get_search_results(self, request, queryset, search_term):
        # The operator search's matching (partial, trigram-indexed), phone and email only with view_pii.
        if not search_term.strip():
            return queryset, False
        return queryset.filter(customer_search_q(search_term, pii=_can_see_pii(request))), False

    list_filter = [
        "gender",
        ("channel", display_values_filter("channel")),
        ("signup_at", admin.DateFieldListFilter),
        "consent_push",
        "consent_sms",
        "consent_email",
        "consent_wechat",
        "consent_in_app",
        "do_not_contact",
    ]
    raw_id_fields = ["referred_by"]
    list_select_related = ["referred_by"]
    inlines = [CustomerTagInline]
    readonly_fields = ["paid_orders", "paid_amount", "first_order_at", "last_order_at", "created_at", "updated_at"]
    fieldsets = [
        (
            None,
            {"fields": ["external_id", "name", "nickname", "phone", "email", "gender", "birthday", "city", "timezone"]},
        ),
        (_("Acquisition"), {"fields": ["signup_at", "channel", "referred_by"]}),
        (
            _("Consent"),
            {
                "fields": [
                    "consent_push",
                    "consent_sms",
                    "consent_email",
                    "consent_wechat",
                    "consent_in_app",
                    "do_not_contact",
                ]
            },
        ),
        (_("Orders"), {"fields": ["paid_orders", "paid_amount", "first_order_at", "last_order_at"]}),
        (_("Record"), {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description=_("phone"))
    def masked_phone(self, obj: Customer) -> str:
        return mask_phone(obj.phone)

    @admin.display(description=_("email"))
    def masked_email(self, obj: Customer) -> str:
        return mask_email(obj.email)

    @staticmethod
    def _masked(names, request):
        if _can_see_pii(request):
            return list(names)
        return [f"masked_{n}" if n in _MASKS else n for n in names]

    def get_list_display(self, request):
        return self._masked(super().get_list_display(request), request)

    def get_fieldsets(self, request, obj=None):
        return [
            (title, {**opts, "fields": self._masked(opts["fields"], request)})
            for title, opts in super().get_fieldsets(request, obj)
        ]

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            readonly.append("external_id")  # the upsert key: a new one would be a new customer
        if not _can_see_pii(request):
            readonly += ["masked_phone", "masked_email"]
        return readonly

    def save_model(self, request, obj, form, change):
        # The API's write (and its audit row, from → to); the change view's transaction holds both.
        customers_upsert_batch(batch=_one_row(form.row), actor=request.user)
        _copy_stored(obj, Customer.objects.get(external_id=form.row.external_id))

    def save_formset(self, request, form, formset, change):
        if formset.model is not CustomerTag:
            return super().save_formset(request, form, formset, change)
        deleted = set(formset.deleted_forms)
        tags = sorted(
            {
                f.cleaned_data["tag"]
                for f in formset.forms
                if f not in deleted and f.cleaned_data.get("tag") and not f.cleaned_data.get("DELETE")
            }
        )
        stored = sorted(form.instance.tags.values_list("tag", flat=True))
        if tags != stored:
            customer_tags_set(customer=form.instance, tags=tags, actor=request.user)
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        return None


@admin.register(Order)
class OrderAdmin(_ImportExportAdmin):
    form = OrderAdminForm
    resource_classes = [OrderResource]
    list_display = ["external_id", "customer", "amount", "currency", "status", "occurred_at"]
    # Newest first by order_time; currency by order_currency_time (core.admin_base says why).
    ordering = ["-occurred_at"]
    list_filter = ["status", ("currency", DistinctValuesFilter), ("occurred_at", admin.DateFieldListFilter)]
    search_fields = ["=external_id", "=customer__external_id"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]
    readonly_fields = ["created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        # The key the backend sends, and the customer: an order never moves to another one.
        return [*readonly, "external_id", "customer"] if obj is not None else readonly

    def save_model(self, request, obj, form, change):
        row = form.row
        if change:
            stored = Order.objects.select_related("customer").get(pk=obj.pk)
            order_update(
                order=stored,
                actor=request.user,
                amount=row.amount,
                currency=row.currency,
                status=row.status,
                occurred_at=row.occurred_at,
            )
        else:
            orders_upsert_batch(batch=_one_row(row), actor=request.user)
        _copy_stored(obj, Order.objects.get(external_id=row.external_id))


@admin.register(Event)
class EventAdmin(ScaledListMixin, admin.ModelAdmin):
    form = EventAdminForm
    fields = ["customer", "type", "occurred_at", "properties", "external_id", "dedupe_key", "created_at"]
    list_display = [
        display_name_column("type", "event_type", _("type")),
        "customer",
        "occurred_at",
        "external_id",
        "created_at",
    ]
    # Newest first by event_time, a type by event_type_time.
    ordering = ["-occurred_at"]
    list_filter = [("type", display_values_filter("event_type")), ("occurred_at", admin.DateFieldListFilter)]
    search_fields = ["=external_id", "=customer__external_id"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]
    readonly_fields = ["dedupe_key", "created_at"]

    def get_search_results(self, request, queryset, search_term):
        # An external id is stored in the unique dedupe key ("x:<id>"), which has the index.
        term = search_term.strip()
        if not term:
            return queryset, False
        customers = list(Customer.objects.filter(external_id=term).values_list("pk", flat=True))  # see ScaledListMixin
        return queryset.filter(Q(dedupe_key=f"x:{term}") | Q(customer_id__in=customers)), False

    # Events are what customers did: added (through the API's write), never edited or deleted.
    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        result = events_append_batch(batch=_one_row(form.row), actor=request.user)
        key = event_dedupe_key(customer_id=form.cleaned_data["customer"].pk, row=form.row)
        stored = Event.objects.get(dedupe_key=key)
        if not result.created:
            messages.info(request, _("This event was stored already; nothing was added."))
        _copy_stored(obj, stored)

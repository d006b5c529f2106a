"""Admin for customers, orders and events, with CSV/XLSX import and export.

Phone numbers and emails are masked for admins without ``users.view_pii``: in
the list, the change form (read-only there), exports and import previews.
Customers, orders and events are big tables: relations use raw-id inputs, the
lists do not count every row, and nothing renders a select of all customers.
"""

from datetime import date, datetime
from decimal import Decimal

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from import_export.admin import ImportExportModelAdmin
from import_export.formats.base_formats import CSV, XLSX

from core.pii import mask_email, mask_phone
from core.services import audit_record

from .models import Customer, CustomerTag, Event, Order
from .resources import CustomerResource, OrderResource

_MASKS = {"phone": mask_phone, "email": mask_email}


def _can_see_pii(request) -> bool:
    return request.user.has_perm("users.view_pii")


class _ImportExportAdmin(ImportExportModelAdmin):
    """CSV and XLSX, a dry-run preview before anything is written, and all-or-nothing files."""

    import_formats = [CSV, XLSX]
    export_formats = [CSV, XLSX]
    show_full_result_count = False

    def get_resource_kwargs(self, request, *args, **kwargs):
        return {**super().get_resource_kwargs(request, *args, **kwargs), "pii": _can_see_pii(request)}

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


def _audit_value(field: str, value):
    if field in _MASKS:
        return _MASKS[field](value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(getattr(value, "external_id", value))


@admin.register(Customer)
class CustomerAdmin(_ImportExportAdmin):
    resource_classes = [CustomerResource]
    list_display = ["external_id", "name", "nickname", "phone", "email", "gender", "city", "channel",
                    "do_not_contact", "paid_orders", "last_order_at", "updated_at"]
    list_display_links = ["external_id"]
    search_fields = ["=external_id", "=phone", "=email", "name", "nickname"]
    list_filter = ["gender", "channel", "consent_push", "consent_sms", "consent_email", "consent_wechat",
                   "consent_in_app", "do_not_contact"]
    date_hierarchy = "signup_at"
    raw_id_fields = ["referred_by"]
    list_select_related = ["referred_by"]
    inlines = [CustomerTagInline]
    readonly_fields = ["paid_orders", "paid_amount", "first_order_at", "last_order_at", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["external_id", "name", "nickname", "phone", "email", "gender", "birthday", "city",
                           "timezone"]}),
        (_("Acquisition"), {"fields": ["signup_at", "channel", "referred_by"]}),
        (_("Consent"), {"fields": ["consent_push", "consent_sms", "consent_email", "consent_wechat",
                                   "consent_in_app", "do_not_contact"]}),
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
        return [(title, {**opts, "fields": self._masked(opts["fields"], request)})
                for title, opts in super().get_fieldsets(request, obj)]

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if not _can_see_pii(request):
            readonly += ["masked_phone", "masked_email"]
        return readonly

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and form.changed_data:
            # The admin's change view runs in one transaction: the change and its audit row go together.
            audit_record(
                actor=request.user, action="customer.change", obj=obj,
                changes={f: [_audit_value(f, form.initial.get(f)), _audit_value(f, form.cleaned_data.get(f))]
                         for f in form.changed_data},
            )


@admin.register(Order)
class OrderAdmin(_ImportExportAdmin):
    resource_classes = [OrderResource]
    list_display = ["external_id", "customer", "amount", "currency", "status", "occurred_at"]
    list_filter = ["status", "currency"]
    search_fields = ["=external_id", "=customer__external_id"]
    date_hierarchy = "occurred_at"
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["type", "customer", "occurred_at", "external_id", "created_at"]
    list_filter = ["type"]
    search_fields = ["=external_id", "=customer__external_id"]
    date_hierarchy = "occurred_at"
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]
    readonly_fields = ["dedupe_key", "created_at"]
    show_full_result_count = False

"""The admin for campaigns: the contact policy admins edit — the frequency caps and the
one row of quiet hours, back-off and A/B knobs, written through
``campaigns.services.caps`` (validated, audited; a refused value is shown at its field,
nothing saved) — and, read-only, the campaigns with their variants and the deliveries
(they are written by the campaign services and the dispatch, never by hand). Dispatch
chunks are the dispatch's bookkeeping and are not shown."""

from django.contrib import admin
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from core.admin_base import ReadOnlyAdmin, ScaledListMixin

from .forms import CapRuleAdminForm, ContactPolicyAdminForm
from .models import Campaign, CapRule, ContactPolicy, Delivery, Variant
from .services import caps as cap_services
from .templatetags.campaigns_display import REASON_LABELS


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            if unit == "day":
                return ngettext("%(n)s day", "%(n)s days", n) % {"n": n}
            if unit == "hour":
                return ngettext("%(n)s hour", "%(n)s hours", n) % {"n": n}
            return ngettext("%(n)s minute", "%(n)s minutes", n) % {"n": n}
    return ngettext("%(n)s second", "%(n)s seconds", seconds) % {"n": seconds}


def windows_text(windows: list[dict]) -> str:
    """``[{"seconds": 10800, "limit": 1}, …]`` → "at most 1 per 3 hours; at most 7 per 1 day"."""
    return "; ".join(
        gettext("at most %(n)s per %(window)s") % {"n": w["limit"], "window": _duration(int(w["seconds"]))}
        for w in windows or []
        if isinstance(w, dict) and "seconds" in w and "limit" in w
    )


@admin.register(CapRule)
class CapRuleAdmin(ScaledListMixin, admin.ModelAdmin):
    form = CapRuleAdminForm
    # The seeded names are English text; the list shows the windows in the admin's language.
    list_display = ["code", "channel", "content_class", "windows_shown", "is_active", "updated_at"]
    list_filter = ["channel", "content_class", "is_active"]
    search_fields = ["code", "name"]
    readonly_fields = ["updated_at"]

    @admin.display(description=_("windows"))
    def windows_shown(self, obj):
        return windows_text(obj.windows)

    def has_delete_permission(self, request, obj=None):
        # Switch a cap off (audited) instead: "active" unticked.
        return False

    def save_model(self, request, obj, form, change):
        data = {field: form.cleaned_data[field] for field in cap_services.CAP_FIELDS if field in form.cleaned_data}
        saved = cap_services.cap_save(cap=obj if change else None, data=data, actor=request.user)
        obj.pk, obj.updated_at = saved.pk, saved.updated_at


@admin.register(ContactPolicy)
class ContactPolicyAdmin(ScaledListMixin, admin.ModelAdmin):
    form = ContactPolicyAdminForm
    list_display = ["__str__", "quiet_start", "quiet_end", "backoff_after", "backoff_factor", "ab_min_sample"]
    readonly_fields = ["updated_at"]

    def has_add_permission(self, request):
        # One row, seeded by a migration.
        return super().has_add_permission(request) and not ContactPolicy.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = {field: form.cleaned_data[field] for field in cap_services.POLICY_FIELDS}
        saved = cap_services.policy_save(data=data, actor=request.user)
        obj.pk, obj.updated_at = saved.pk, saved.updated_at


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 0
    can_delete = False
    fields = ["code", "share", "template", "template_version", "subject", "field_values"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyAdmin):
    list_display = ["name", "status", "channel", "category", "schedule", "start_at", "created_by", "created_at"]
    list_filter = ["status", "channel", "category", "schedule"]
    search_fields = ["name"]
    list_select_related = ["created_by"]
    inlines = [VariantInline]


class ReasonFilter(admin.SimpleListFilter):
    """The reasons the policy gives (a fixed list: no DISTINCT over the deliveries)."""

    title = _("reason")
    parameter_name = "reason"

    def lookups(self, request, model_admin):
        return list(REASON_LABELS.items())

    def queryset(self, request, queryset):
        return queryset.filter(reason=self.value()) if self.value() else queryset


class CampaignFilter(admin.SimpleListFilter):
    """The latest campaigns (the campaigns table, not the deliveries, is read)."""

    title = _("campaign")
    parameter_name = "campaign"
    shown = 50

    def lookups(self, request, model_admin):
        return [
            (str(pk), name)
            for pk, name in Campaign.objects.order_by("-created_at").values_list("pk", "name")[: self.shown]
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(campaign_id=int(value)) if value.isdigit() else queryset.none()


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "created_at",
        "campaign_shown",
        "customer_shown",
        "channel",
        "category",
        "status",
        "reason_shown",
        "rule",
        "send_after",
        "sent_at",
    ]
    list_filter = ["status", "channel", ReasonFilter, CampaignFilter]
    search_fields = ["=key", "=customer__external_id"]
    list_select_related = ["campaign", "customer"]
    ordering = ["-id"]
    raw_id_fields = ["customer", "campaign", "variant", "template_version", "conversion_order"]

    @admin.display(description=_("campaign"), ordering="campaign")
    def campaign_shown(self, obj):
        return obj.campaign.name if obj.campaign_id else "—"

    @admin.display(description=_("customer"), ordering="customer")
    def customer_shown(self, obj):
        return obj.customer.external_id

    @admin.display(description=_("reason"), ordering="reason")
    def reason_shown(self, obj):
        return str(REASON_LABELS.get(obj.reason, obj.reason)) if obj.reason else "—"

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from import_export.admin import ImportExportModelAdmin

from core import exports
from core.admin_base import ReadOnlyAdmin, ScaledAdmin, ScaledListMixin

from .models import (
    Badge,
    CustomerBadge,
    EarningRule,
    IncentivePolicy,
    Level,
    PointsAccount,
    PointsEntry,
    Redemption,
    Reward,
)
from .resources import BadgeResource, EarningRuleResource, LevelResource, RewardResource
from .services import catalogue_delete, catalogue_save, policy_update, redemption_cancel
from .services.policy import POLICY_FIELDS


class _AuditedAdmin(ScaledListMixin, ImportExportModelAdmin):
    """Catalogue edits, deletes and imports go through ``incentives.services.catalogue``,
    which validates, saves and writes the audit row (from → to)."""

    formats = import_formats = export_formats = exports.FORMATS  # no cell exported as a live formula
    skip_admin_log = True  # the service's audit rows are the import's record

    def get_import_resource_kwargs(self, request, *args, **kwargs):
        return {**super().get_import_resource_kwargs(request, *args, **kwargs), "actor": request.user}

    def save_model(self, request, obj, form, change):
        catalogue_save(obj=obj, actor=request.user)

    def delete_model(self, request, obj):
        catalogue_delete(obj=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            catalogue_delete(obj=obj, actor=request.user)


@admin.register(EarningRule)
class EarningRuleAdmin(_AuditedAdmin):
    resource_classes = [EarningRuleResource]
    list_display = [
        "code",
        "name",
        "kind",
        "points",
        "points_per_yuan",
        "streak_days",
        "daily_cap",
        "is_active",
        "active_from",
        "active_until",
    ]
    list_filter = ["kind", "is_active"]
    search_fields = ["code", "name"]


@admin.register(Reward)
class RewardAdmin(_AuditedAdmin):
    resource_classes = [RewardResource]
    list_display = ["name", "points_price", "stock", "valid_from", "valid_until", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name"]


@admin.register(Level)
class LevelAdmin(_AuditedAdmin):
    resource_classes = [LevelResource]
    list_display = ["name", "threshold"]


@admin.register(Badge)
class BadgeAdmin(_AuditedAdmin):
    resource_classes = [BadgeResource]
    list_display = ["code", "name", "kind", "threshold", "is_active"]
    list_filter = ["kind", "is_active"]


@admin.register(IncentivePolicy)
class IncentivePolicyAdmin(ScaledAdmin):
    list_display = [
        "__str__",
        "expiry_months",
        "reminder_days",
        "growth_window_days",
        "level_grace_days",
        "level_downgrade_margin_pct",
    ]

    def has_add_permission(self, request):
        return not IncentivePolicy.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        saved = policy_update(
            actor=request.user, **{f: form.cleaned_data[f] for f in POLICY_FIELDS if f in form.cleaned_data}
        )
        obj.pk = saved.pk
        obj._state.adding = False


@admin.register(PointsEntry)
class PointsEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "customer", "kind", "amount", "balance_after", "reason", "source", "created_at", "expires_at"]
    list_filter = ["kind", "source", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["=customer__external_id", "=idempotency_key", "=source_ref"]
    list_select_related = ["customer"]
    raw_id_fields = ["customer", "operator", "rule", "reverses"]


@admin.register(PointsAccount)
class PointsAccountAdmin(ReadOnlyAdmin):
    list_display = ["customer", "balance", "growth_value", "level", "level_below_since"]
    list_select_related = ["customer", "level"]
    search_fields = ["=customer__external_id"]
    list_filter = ["level"]


@admin.register(CustomerBadge)
class CustomerBadgeAdmin(ReadOnlyAdmin):
    list_display = ["customer", "badge", "awarded_at"]
    list_select_related = ["customer", "badge"]
    list_filter = ["badge"]


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyAdmin):
    list_display = ["id", "customer", "reward", "points", "status", "created_at", "cancelled_at"]
    list_filter = ["status", "reward"]
    list_select_related = ["customer", "reward"]
    search_fields = ["=customer__external_id", "=idempotency_key"]
    actions = ["cancel"]

    @admin.action(description=_("Cancel: give the points back and restock"), permissions=["cancel"])
    def cancel(self, request, queryset):
        for redemption in queryset.select_related("customer", "spend_entry"):
            redemption_cancel(redemption=redemption, actor=request.user)
        self.message_user(request, _("Redemptions cancelled."), messages.SUCCESS)

    def has_cancel_permission(self, request):
        return request.user.has_perm("incentives.change_redemption")

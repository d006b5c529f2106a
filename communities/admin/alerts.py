"""The admin for keyword alerts: the rules (edited by admins; the keyword or pattern is
checked when the form is saved and a refused one is shown with the reason, nothing
saved), and the alerts and incidents the scan raised (read-only: they are handled on
the operators' alerts pages, through the services)."""

from django import forms
from django.contrib import admin

from core.admin_base import ReadOnlyAdmin, ScaledListMixin

from .. import access
from ..models import Alert, Incident, KeywordRule
from ..services import alerts as services


class KeywordRuleForm(forms.ModelForm):
    class Meta:
        model = KeywordRule
        fields = ["name", "kind", "pattern", "severity", "is_active"]

    def clean(self):
        cleaned = super().clean()
        kind, pattern = cleaned.get("kind"), cleaned.get("pattern")
        if kind and pattern is not None:
            problem = services.keyword_rule_problem(kind=kind, pattern=pattern)
            if problem:
                self.add_error("pattern", problem)
        return cleaned


@admin.register(KeywordRule)
class KeywordRuleAdmin(ScaledListMixin, admin.ModelAdmin):
    form = KeywordRuleForm
    list_display = ["name", "kind", "pattern", "severity", "is_active", "hit_count", "dismissed_count", "updated_at"]
    list_filter = ["kind", "severity", "is_active"]
    search_fields = ["name", "pattern"]
    readonly_fields = ["hit_count", "dismissed_count", "updated_at"]

    def has_delete_permission(self, request, obj=None):
        # A rule's alerts point at it: switch it off (is_active) instead of deleting it.
        return False

    def save_model(self, request, obj, form, change):
        # The form refused a bad pattern with its reason; the service checks it again.
        services.keyword_rule_save(rule=obj, actor=request.user)


class _VisibleGroupsAdmin(ReadOnlyAdmin):
    """Only the rows of the groups the user may see (admins see every group)."""

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("group")
        if access.group_visible_q(request.user) is None:
            return qs
        return qs.filter(group__in=access.groups_visible(request.user))


@admin.register(Alert)
class AlertAdmin(_VisibleGroupsAdmin):
    list_display = ["raised_at", "group", "rule", "severity", "matched", "status", "incident"]
    list_filter = ["status", "severity"]
    search_fields = ["matched", "=message__external_id"]
    list_select_related = ["group", "rule", "incident"]
    readonly_fields = [
        "group",
        "message",
        "rule",
        "severity",
        "matched",
        "raised_at",
        "incident",
        "status",
        "handled_by",
        "handled_at",
        "dismiss_reason",
    ]
    fields = readonly_fields


@admin.register(Incident)
class IncidentAdmin(_VisibleGroupsAdmin):
    list_display = ["opened_at", "group", "severity", "last_hit_at", "ticket_id"]
    list_filter = ["severity"]
    search_fields = ["=ticket_id", "group__name"]
    list_select_related = ["group"]
    readonly_fields = ["group", "opened_at", "last_hit_at", "severity", "ticket_id"]
    fields = readonly_fields

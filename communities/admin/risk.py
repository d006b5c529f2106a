"""The admin for risk members and the community settings.

- ``CommunitySettings`` is one row: it can be added while there is none, never a
  second one, never deleted; saving goes through ``community_settings_save``, whose
  range checks the form shows on the field they concern.
- ``RiskAction`` is read-only here: the record is written only by
  ``communities.services.risk.risk_action_record`` (the group's risk page), which also
  carries the action out. An operator who is staff but does not see every group sees
  the actions of the groups they see (``communities.access``)."""

from django import forms
from django.contrib import admin

from core.admin_base import ReadOnlyAdmin, ScaledListMixin

from .. import access
from ..models import CommunityGroup, CommunitySettings, RiskAction
from ..services.settings import community_settings_save, settings_problems


class CommunitySettingsForm(forms.ModelForm):
    class Meta:
        model = CommunitySettings
        fields = ["ticket_severity", "incident_window_minutes", "risk_repeat_days"]

    def _post_clean(self):
        super()._post_clean()
        if self._errors:
            return
        for field, messages in settings_problems(row=self.instance).items():
            for message in messages:
                self.add_error(field if field in self.fields else None, message)


@admin.register(CommunitySettings)
class CommunitySettingsAdmin(ScaledListMixin, admin.ModelAdmin):
    form = CommunitySettingsForm
    list_display = ["__str__", "ticket_severity", "incident_window_minutes", "risk_repeat_days"]

    def has_view_permission(self, request, obj=None):
        # The thresholds are the admins': reading them here comes with the right to change them.
        return self.has_change_permission(request, obj)

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not CommunitySettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        # The form ran the same checks (settings_problems), so the service refuses nothing here.
        community_settings_save(row=obj, actor=request.user)


class _StepFilter(admin.SimpleListFilter):
    """Not the column's distinct values: the three steps, from the choices."""

    parameter_name = "step"
    field = "step"

    @property
    def title(self):
        return RiskAction._meta.get_field(self.field).verbose_name

    def lookups(self, request, model_admin):
        return RiskAction._meta.get_field(self.field).choices

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{self.field: value}) if value else queryset


class _ReasonFilter(_StepFilter):
    parameter_name = "reason"
    field = "reason"


@admin.register(RiskAction)
class RiskActionAdmin(ReadOnlyAdmin):
    list_display = ["at", "group", "customer", "step", "requested_step", "reason", "actor", "mute_until"]
    list_filter = [_StepFilter, _ReasonFilter, ("at", admin.DateFieldListFilter)]
    list_select_related = ["group", "customer", "actor"]
    search_fields = ["=customer__external_id"]
    ordering = ["-at", "-id"]
    fields = ["group", "customer", "requested_step", "step", "reason", "note", "actor", "at", "mute_until"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        visible = access.group_visible_q(request.user)
        if visible is None:
            return queryset
        return queryset.filter(group__in=CommunityGroup.objects.filter(visible))

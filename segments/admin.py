"""Admin for the segments engine.

Rule sets are versioned: saving an edit creates a NEW version through
``segments.services.rule_set_save_new_version`` and leaves the old one as it was
(every recompute keeps pointing at the rules that produced it); old versions are
view-only. Runs, stage changes and size snapshots are history: read-only.
Custom segments, dynamic and static, are saved through
``segments.services.segment_save`` (audited from → to; a dynamic segment's members
are materialised on save), from the form and from the import (CSV/XLSX), which
carries their definitions between environments.
"""

import json

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from import_export import fields, resources, widgets
from import_export.admin import ImportExportModelAdmin
from import_export.formats.base_formats import CSV, XLSX

from core.admin_base import ReadOnlyAdmin, ScaledAdmin, ScaledListMixin
from core.errors import ApplicationError

from . import rules
from .definitions import DefinitionError, compile_definition
from .forms import RuleSetAdminForm, SegmentAdminForm, definition_error_text
from .labels import size_key_label
from .models import RuleSet, Segment, SegmentMembershipChange, SegmentRun, SegmentSizeSnapshot, StageChange
from .services import rule_set_save_new_version, segment_save

THRESHOLD_FIELDS = set(rules.Thresholds.__dataclass_fields__) | {"clv_horizon_days"}


def _pretty_json(value) -> str:
    return format_html(
        '<pre style="margin:0;white-space:pre-wrap">{}</pre>',
        json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str),
    )


@admin.register(RuleSet)
class RuleSetAdmin(ScaledAdmin):
    form = RuleSetAdminForm
    list_display = [
        "version",
        "is_active",
        "note",
        "rfm_window_days",
        "tier_super_vip_annual",
        "tier_core_annual",
        "churn_warning_p_alive",
        "created_at",
        "created_by",
    ]
    list_display_links = ["version"]
    list_filter = ["is_active"]
    readonly_fields = ["version", "is_active", "created_at", "created_by"]
    fieldsets = [
        (None, {"fields": ["version", "is_active", "note", "created_at", "created_by"]}),
        (_("RFM"), {"fields": ["rfm_window_days", "rfm_groups", "rfm_segments"]}),
        (
            _("Value tiers"),
            {"fields": ["tier_super_vip_annual", "tier_core_annual", "tier_active_monthly", "tier_normal_monthly"]},
        ),
        (
            _("Lifecycle and churn"),
            {
                "fields": [
                    "new_days",
                    "mature_min_orders",
                    "churn_warning_p_alive",
                    "churned_p_alive",
                    "warning_inactive_days",
                    "churned_inactive_days",
                    "clv_horizon_days",
                ]
            },
        ),
    ]

    def _latest_pk(self):
        return RuleSet.objects.order_by("-version").values_list("pk", flat=True).first()

    def has_change_permission(self, request, obj=None):
        # Only the newest version can be edited (into a newer one); older ones are history.
        if obj is not None and obj.pk != self._latest_pk():
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False  # runs point at their rule set; a version is never removed

    def save_model(self, request, obj, form, change):
        base = RuleSet.objects.get(pk=obj.pk) if change else RuleSet()
        # Compared with the stored version, not ``form.changed_data``: JSON fields with a
        # callable default count as changed whenever their hidden initial is missing.
        changes = {
            name: form.cleaned_data[name]
            for name in THRESHOLD_FIELDS & set(form.cleaned_data)
            if form.cleaned_data[name] != getattr(base, name)
        }
        note = form.cleaned_data.get("note", "")
        if change and not changes and note == base.note:
            messages.info(request, gettext("Nothing changed: no new version was made."))
            return
        # The service copies the Thresholds fields from the base; the CLV horizon is not one of them.
        changes.setdefault("clv_horizon_days", form.cleaned_data["clv_horizon_days"])
        try:
            new = rule_set_save_new_version(base=base, changes=changes, actor=request.user, note=note)
        except ApplicationError as exc:
            # The form's clean ran the same checks; this is the service's last word.
            raise ValidationError(exc.message) from exc
        # The admin goes on to log and redirect with ``obj``: make it the new version.
        for field in RuleSet._meta.concrete_fields:
            setattr(obj, field.attname, getattr(new, field.attname))
        obj._state.adding = False
        if change:
            messages.info(
                request,
                gettext("Saved as version %(new)s; version %(old)s stays as it was.")
                % {"new": new.version, "old": base.version},
            )


@admin.register(SegmentRun)
class SegmentRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "status", "as_of", "rule_set", "chunks", "started_at", "finished_at"]
    list_filter = ["status", "kind"]
    date_hierarchy = "as_of"
    list_select_related = ["rule_set"]
    fields = [
        "kind",
        "status",
        "as_of",
        "rule_set",
        "started_at",
        "heartbeat_at",
        "published_at",
        "finished_at",
        "chunks",
        "phases_pretty",
        "counts_pretty",
        "model_params_pretty",
        "error",
    ]
    readonly_fields = fields

    @admin.display(description=_("chunks done"))
    def chunks(self, obj: SegmentRun) -> str:
        return f"{obj.chunks_done}/{obj.chunks_total}"

    @admin.display(description=_("seconds per phase"))
    def phases_pretty(self, obj: SegmentRun) -> str:
        return _pretty_json(obj.phases)

    @admin.display(description=_("counts"))
    def counts_pretty(self, obj: SegmentRun) -> str:
        return _pretty_json(obj.counts)

    @admin.display(description=_("churn model parameters"))
    def model_params_pretty(self, obj: SegmentRun) -> str:
        return _pretty_json(obj.model_params)


@admin.register(StageChange)
class StageChangeAdmin(ReadOnlyAdmin):
    list_display = ["customer_external_id", "customer", "from_stage", "to_stage", "reactivated", "at", "run"]
    list_filter = ["to_stage", "from_stage", "reactivated", ("at", admin.DateFieldListFilter)]
    search_fields = ["=customer__external_id"]
    list_select_related = ["customer", "run"]

    @admin.display(description=_("external id"), ordering="customer__external_id")
    def customer_external_id(self, obj: StageChange) -> str:
        return obj.customer.external_id


@admin.register(SegmentSizeSnapshot)
class SegmentSizeSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["segment_label", "size", "as_of", "run"]
    list_filter = ["as_of"]
    date_hierarchy = "as_of"
    search_fields = ["key"]

    @admin.display(description=_("segment"), ordering="key")
    def segment_label(self, obj):
        return size_key_label(obj.key)


@admin.register(SegmentMembershipChange)
class SegmentMembershipChangeAdmin(ReadOnlyAdmin):
    list_display = ["segment", "customer", "change", "at"]
    list_filter = ["change", "segment", ("at", admin.DateFieldListFilter)]
    search_fields = ["=customer__external_id", "=segment__slug"]
    list_select_related = ["segment", "customer"]


# --- custom segments ------------------------------------------------------------------


class SegmentResource(resources.ModelResource):
    """Segment definitions (not members) as CSV/XLSX. Rows are matched by slug; a
    dynamic segment is saved through ``segment_save``, so it is validated and its
    members are materialised as if saved in the builder."""

    definition = fields.Field(attribute="definition", column_name="definition", widget=widgets.JSONWidget())

    class Meta:
        model = Segment
        import_id_fields = ["slug"]
        fields = ["slug", "name", "description", "kind", "definition", "is_active"]
        export_order = fields
        skip_unchanged = True
        clean_model_instances = True

    def validate_instance(self, instance, import_validation_errors=None, validate_unique=True):
        errors = dict(import_validation_errors or {})
        if instance.kind == Segment.Kind.DYNAMIC and "definition" not in errors:
            try:
                compile_definition(instance.definition, run_id=None)
            except DefinitionError as exc:
                errors["definition"] = [definition_error_text(exc)]
        super().validate_instance(instance, errors, validate_unique)

    def __init__(self, *, actor=None, **kwargs):
        super().__init__(**kwargs)
        self.actor = actor

    def before_import(self, dataset, **kwargs):
        super().before_import(dataset, **kwargs)
        if self.actor is None:
            self.actor = kwargs.get("user")

    def do_instance_save(self, instance, is_create):
        # Static members come only from an uploaded list; here only name, text and the flag change.
        saved = segment_save(
            name=instance.name,
            definition=instance.definition,
            slug=instance.slug,
            description=instance.description,
            segment=None if is_create else instance,
            is_active=instance.is_active,
            kind=instance.kind,
            actor=self.actor,
        )
        instance.pk = saved.pk


@admin.register(Segment)
class SegmentAdmin(ScaledListMixin, ImportExportModelAdmin):
    form = SegmentAdminForm
    resource_classes = [SegmentResource]
    import_formats = [CSV, XLSX]
    export_formats = [CSV, XLSX]
    list_display = ["name", "slug", "kind", "size", "computed_at", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "slug"]
    readonly_fields = ["size", "computed_at", "created_by", "created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            readonly += ["slug", "kind"]  # links, the API and history keys use the slug
        return readonly

    def get_import_data_kwargs(self, **kwargs):
        kwargs = super().get_import_data_kwargs(**kwargs)
        kwargs["use_transactions"] = True
        kwargs["rollback_on_validation_errors"] = True
        return kwargs

    def has_import_permission(self, request):
        return self.has_add_permission(request) and self.has_change_permission(request)

    def get_import_resource_kwargs(self, request, *args, **kwargs):
        return {**super().get_import_resource_kwargs(request, *args, **kwargs), "actor": request.user}

    def save_model(self, request, obj, form, change):
        # Dynamic and static alike: the service validates, writes the audit row (from → to)
        # and, for a dynamic segment, materialises its members.
        saved = segment_save(
            name=obj.name,
            definition=obj.definition,
            actor=request.user,
            slug=obj.slug,
            description=obj.description,
            segment=obj if change else None,
            is_active=obj.is_active,
            kind=obj.kind,
        )
        for field in Segment._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding = False

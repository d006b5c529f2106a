from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from . import accounts_admin  # noqa: F401  operator accounts and roles (replaces django.contrib.auth's admin)
from .admin_base import ReadOnlyAdmin, ScaledAdmin
from .models import ApiKey, ApiScope, AuditEntry, DisplayName, JobRun
from .services import (
    api_key_create,
    api_key_revoke,
    api_key_update,
    display_name_delete,
    display_name_save,
    failed_jobs_requeue,
)


class ApiKeyCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(label=_("scopes"), choices=ApiScope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiKey
        fields = ["name", "scopes", "rate_limit", "expires_at"]


@admin.register(ApiKey)
class ApiKeyAdmin(ScaledAdmin):
    list_display = ["name", "prefix", "scopes", "created_at", "last_used_at", "expires_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "created_at", "created_by", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def has_delete_permission(self, request, obj=None):
        return False  # a key is revoked (audited), never deleted: its audit rows point at it

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "scopes"] if obj else []

    def save_model(self, request, obj, form, change):
        if change:
            # The form edited ``obj`` in memory; the service compares it with the stored row.
            stored = ApiKey.objects.get(pk=obj.pk)
            api_key_update(
                key=stored,
                actor=request.user,
                **{f: form.cleaned_data[f] for f in form.changed_data if f in ("name", "rate_limit", "expires_at")},
            )
            return None
        key, full = api_key_create(
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            rate_limit=form.cleaned_data.get("rate_limit") or "",
            expires_at=form.cleaned_data.get("expires_at"),
            created_by=request.user,
        )
        obj.pk = key.pk
        messages.warning(request, _("Copy this key now, it is not shown again: %(key)s") % {"key": full})

    @admin.action(description=_("Revoke selected keys"))
    def revoke(self, request, queryset):
        for key in queryset:
            api_key_revoke(key=key, actor=request.user)
        self.message_user(request, _("Keys revoked."))


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor_label", "action", "object_type", "object_id"]
    list_filter = ["action", "object_type"]
    search_fields = ["actor_label", "object_id"]
    readonly_fields = [f.name for f in AuditEntry._meta.fields]


@admin.register(JobRun)
class JobRunAdmin(ScaledAdmin):
    list_display = ["job", "status", "started_at", "finished_at", "counts"]
    list_filter = ["job", "status"]
    readonly_fields = [f.name for f in JobRun._meta.fields]
    actions = ["requeue_failed"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Re-queue the failed rows of the selected runs"), permissions=["change"])
    def requeue_failed(self, request, queryset):
        requeued = failed_jobs_requeue(queryset.filter(status=JobRun.Status.FAILED))
        self.message_user(
            request,
            _("%(runs)d run(s) re-queued, %(ids)d row(s).")
            % {"runs": len(requeued), "ids": sum(len(r.counts["failed_ids"]) for r in requeued)},
        )


class DisplayNameForm(forms.ModelForm):
    class Meta:
        model = DisplayName
        fields = ["kind", "key", "name_en", "name_zh_hans"]

    def _post_clean(self):
        # Uniqueness and validation are the service's (one write path); it runs in save_model.
        pass

    def clean(self):
        cleaned = super().clean()
        clash = DisplayName.objects.filter(kind=cleaned.get("kind"), key=(cleaned.get("key") or "").strip())
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError(_("This key has a display name already."))
        return cleaned


@admin.register(DisplayName)
class DisplayNameAdmin(ScaledAdmin):
    """The names of data keys (channels, event types, event properties) per language;
    saved through ``display_name_save`` (audited; every process sees the change)."""

    form = DisplayNameForm
    list_display = ["kind", "key", "name_en", "name_zh_hans"]
    list_filter = ["kind"]
    search_fields = ["key", "name_en", "name_zh_hans"]

    def save_model(self, request, obj, form, change):
        # The form checked the key is free; the service validates again and audits.
        saved = display_name_save(display_name=obj if change else None, actor=request.user, **form.cleaned_data)
        for field in DisplayName._meta.concrete_fields:  # the admin logs and redirects with ``obj``
            setattr(obj, field.attname, getattr(saved, field.attname))

    def delete_model(self, request, obj):
        display_name_delete(display_name=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            display_name_delete(display_name=obj, actor=request.user)

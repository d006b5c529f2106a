"""The admin for SOP templates: a template with its versions (read-only history:
who wrote, who approved or rejected, when, why), and the versions with approve and
reject.

One write path (``communities.services.templates``): adding a template is
``template_create`` (the text becomes version 1, waiting for approval); a change of name,
type, language or active flag is ``template_update``; a changed text or field list is
``version_write`` (a new version — the one in use stays until it is approved). The form
runs the service's check first (``version_check``), so a refused text is a form error
with the reason and nothing is written. Approving and rejecting are the version's
buttons and list actions, calling ``version_approve`` / ``version_reject``; nothing is
deleted (the history stays)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext_lazy

from core.admin_base import ScaledListMixin
from core.errors import ApplicationError
from core.json import BoundedJSONDecoder

from .. import templating
from ..models import SopTemplate, SopTemplateVersion, VersionStatus
from ..selectors import templates as selectors
from ..services import templates as services

HISTORY_SHOWN = 50


def _variables_help() -> str:
    return ", ".join("{{ %s }}" % name for name in templating.VARIABLES)  # noqa: UP031


class SopTemplateForm(forms.ModelForm):
    body = forms.CharField(label=_("text"), widget=forms.Textarea(attrs={"rows": 8}), max_length=templating.BODY_MAX)
    fields_declared = forms.JSONField(
        label=_("fields to fill in"),
        required=False,
        decoder=BoundedJSONDecoder,
        help_text=_(
            'A list such as [{"name": "order_no", "label": "Order number", "type": "order_number", '
            '"required": true}]; types: text, number, date, order_number.'
        ),
    )

    class Meta:
        model = SopTemplate
        fields = ["code", "name", "kind", "language", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["body"].help_text = _("Variables: %(v)s; and the declared fields.") % {"v": _variables_help()}
        latest = self.instance.versions.order_by("-number").first() if self.instance.pk else None
        if latest is not None:
            self.fields["body"].initial = latest.body
            self.fields["fields_declared"].initial = latest.fields
            self.fields["code"].disabled = True

    def clean(self):
        cleaned = super().clean()
        if "body" in cleaned:
            try:
                services.version_check(body=cleaned["body"], fields=cleaned.get("fields_declared") or [])
            except ApplicationError as exc:
                self.add_error("fields_declared" if exc.code == "invalid_fields" else "body", exc.message)
        return cleaned


class VersionInline(admin.TabularInline):
    model = SopTemplateVersion
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ["number", "status", "written_by", "written_at", "reviewed_by", "reviewed_at", "review_note"]
    readonly_fields = fields
    ordering = ["-number"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("written_by", "reviewed_by")


@admin.register(SopTemplate)
class SopTemplateAdmin(ScaledListMixin, admin.ModelAdmin):
    form = SopTemplateForm
    list_display = ["name", "code", "kind", "language", "is_active", "approved_version"]
    list_filter = ["kind", "language", "is_active"]
    list_select_related = ["approved_version"]
    search_fields = ["=code", "name"]
    inlines = [VersionInline]
    readonly_fields = ["approved_version", "history"]

    def get_fields(self, request, obj=None):
        fields = ["code", "name", "kind", "language", "is_active", "approved_version", "body", "fields_declared"]
        return [*fields, "history"] if obj is not None else fields

    @admin.display(description=pgettext_lazy("sop template", "history"))
    def history(self, obj: SopTemplate):
        """Who wrote, approved, rejected or changed what, when (the audit rows)."""
        rows = selectors.template_history(template=obj)[:HISTORY_SHOWN]
        return format_html(
            "<table>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        date_format(timezone.localtime(e.at), "Y-m-d H:i"),
                        e.actor_label,
                        e.action,
                        ", ".join(f"{k}: {v}" for k, v in e.changes.items() if k != "body"),
                    )
                    for e in rows
                ),
            ),
        )

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        body, fields = form.cleaned_data["body"], form.cleaned_data.get("fields_declared") or []
        if not change:
            created = services.template_create(
                code=obj.code,
                name=obj.name,
                kind=obj.kind,
                language=obj.language,
                body=body,
                fields=fields,
                actor=request.user,
            )
            obj.pk, obj._state.adding = created.pk, False
            return
        meta = {name: form.cleaned_data[name] for name in ("name", "kind", "language", "is_active")}
        if set(form.changed_data) & set(meta):
            services.template_update(
                template=obj, actor=request.user, **{k: v for k, v in meta.items() if k in form.changed_data}
            )
        if {"body", "fields_declared"} & set(form.changed_data):
            version = services.version_write(template=obj, body=body, fields=fields, actor=request.user)
            messages.info(
                request,
                _("Version %(n)s was written; it waits for an approver, the version in use stays until then.")
                % {"n": version.number},
            )

    def save_related(self, request, form, formsets, change):
        """The versions inline is read-only; nothing else to save."""

    def construct_change_message(self, request, form, formsets, add=False):
        return super().construct_change_message(request, form, [], add)


@admin.register(SopTemplateVersion)
class SopTemplateVersionAdmin(ScaledListMixin, admin.ModelAdmin):
    list_display = ["template", "number", "status", "written_by", "written_at", "reviewed_by", "reviewed_at"]
    list_filter = ["status"]
    list_select_related = ["template", "written_by", "reviewed_by"]
    search_fields = ["=template__code", "template__name"]
    fields = [
        "template",
        "number",
        "status",
        "body",
        "variables",
        "fields",
        "written_by",
        "written_at",
        "reviewed_by",
        "reviewed_at",
        "review_note",
    ]
    readonly_fields = fields
    actions = ["approve_selected"]
    change_form_template = "admin/communities/soptemplateversion/change_form.html"

    def has_add_permission(self, request):
        return False  # a version is written from its template

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # a version's text is history; the review is the buttons below

    def has_approve_permission(self, request):
        return request.user.has_perm("communities.approve_soptemplate")

    def _review(self, request, object_id):
        """Runs the approve/reject button's service; a refusal is shown and nothing is written."""
        stored = self.get_object(request, object_id)
        if stored is None:
            raise Http404
        note = request.POST.get("review_note", "")
        try:
            if "_approve" in request.POST:
                services.version_approve(version=stored, actor=request.user, note=note)
                self.message_user(request, _("Version %(n)s is approved and in use.") % {"n": stored.number})
            else:
                services.version_reject(version=stored, actor=request.user, note=note)
                self.message_user(request, _("Version %(n)s is rejected.") % {"n": stored.number})
        except ApplicationError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
        return HttpResponseRedirect(request.path)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "POST" and ("_approve" in request.POST or "_reject" in request.POST):
            if not self.has_approve_permission(request):
                raise PermissionDenied
            return self._review(request, object_id)
        stored = self.get_object(request, object_id)
        extra_context = {
            **(extra_context or {}),
            "can_review": self.has_approve_permission(request)
            and stored is not None
            and stored.status == VersionStatus.PENDING,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description=_("Approve the selected versions"), permissions=["approve"])
    def approve_selected(self, request, queryset):
        done, refused = 0, []
        # Oldest first: approving v4 before v3 would make v3 stale.
        pending = (
            queryset.filter(status=VersionStatus.PENDING).select_related("template").order_by("template", "number")
        )
        for version in pending:
            try:
                services.version_approve(version=version, actor=request.user)
                done += 1
            except ApplicationError as exc:
                refused.append(f"{version.template.name} v{version.number}: {exc.message}")
        if done:
            self.message_user(
                request, ngettext("%(n)s version approved.", "%(n)s versions approved.", done) % {"n": done}
            )
        for line in refused:
            self.message_user(request, line, level=messages.ERROR)

"""Operator pages of the SOP templates: the list, a template (its versions, who wrote
and who reviewed each, the audit history), a new template, a new version, approve and
reject, and a preview with a sample customer or a real one and the declared fields.

Permissions (``core.roles``): seeing takes ``communities.view_soptemplate`` (community
managers, group admins, viewers, admins); writing a template or a version
``add_soptemplate`` / ``add_soptemplateversion`` (community managers, admins);
approving and rejecting ``approve_soptemplate`` (admins) — without it, 403. Templates
belong to the whole team; the group a preview is for must be one the viewer may see
(``communities.access``: another manager's group is 404 ``unknown_group``). Views check,
call one service or selector and render; a refusal is shown with its reason, nothing
written."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core.errors import ApplicationError, NotFound

from . import access, templating
from .forms_templates import (
    FieldDeclarationFormSet,
    PreviewForm,
    ReviewForm,
    TemplateMetaForm,
    VersionBodyForm,
    declared_fields,
)
from .models import TemplateKind, VersionStatus
from .selectors import templates as selectors
from .services import templates as services


def _template_or_404(template_id):
    try:
        return selectors.template_get(template_id=template_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _version_or_404(version_id):
    try:
        return selectors.version_get(version_id=version_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _variables() -> list[tuple[str, str]]:
    return [(name, str(text)) for name, text in templating.VARIABLES.items()]


@login_required
@permission_required("communities.view_soptemplate", raise_exception=True)
def template_list(request):
    kind = request.GET.get("kind", "")
    kind = kind if kind in TemplateKind.values else ""
    search = request.GET.get("q", "").strip()[:100]
    return render(
        request,
        "communities/templates/list.html",
        {
            "templates": selectors.template_list(kind=kind, search=search),
            "kinds": TemplateKind.choices,
            "kind": kind,
            "q": search,
            "can_write": request.user.has_perm("communities.add_soptemplate"),
        },
    )


@login_required
@permission_required("communities.view_soptemplate", raise_exception=True)
def template_detail(request, template_id: int):
    template = _template_or_404(template_id)
    user = request.user
    can_approve = user.has_perm("communities.approve_soptemplate")
    versions = list(selectors.template_versions(template=template))
    return render(
        request,
        "communities/templates/detail.html",
        {
            "template": template,
            "versions": versions,
            "history": selectors.template_history(template=template),
            "can_write": user.has_perm("communities.add_soptemplateversion"),
            "can_approve": can_approve,
            "review_form": ReviewForm(),
            "pending": VersionStatus.PENDING,
        },
    )


def _write_context(request, *, template=None, meta_form=None, body_form=None, formset=None, error=None):
    return {
        "template": template,
        "meta_form": meta_form if template is None else None,
        "body_form": body_form,
        "formset": formset,
        "error": error,
        "variables": _variables(),
        "filters": templating.FILTERS,
        "field_types": [(k, str(v)) for k, v in templating.FIELD_TYPES.items()],
    }


@login_required
@permission_required("communities.add_soptemplate", raise_exception=True)
def template_new(request):
    if request.method != "POST":
        context = _write_context(
            request, meta_form=TemplateMetaForm(), body_form=VersionBodyForm(), formset=FieldDeclarationFormSet()
        )
        return render(request, "communities/templates/write.html", context)
    meta_form, body_form = TemplateMetaForm(request.POST), VersionBodyForm(request.POST)
    formset = FieldDeclarationFormSet(request.POST)
    error = None
    if meta_form.is_valid() and body_form.is_valid() and formset.is_valid():
        try:
            template = services.template_create(
                **meta_form.cleaned_data,
                body=body_form.cleaned_data["body"],
                fields=declared_fields(formset),
                actor=request.user,
            )
        except ApplicationError as exc:
            error = exc.message
        else:
            messages.success(request, _("Template created; version 1 waits for an approver."))
            return redirect("communities:template", template_id=template.pk)
    context = _write_context(request, meta_form=meta_form, body_form=body_form, formset=formset, error=error)
    return render(request, "communities/templates/write.html", context, status=400)


@login_required
@permission_required("communities.add_soptemplateversion", raise_exception=True)
def version_new(request, template_id: int):
    template = _template_or_404(template_id)
    if request.method != "POST":
        latest = template.versions.order_by("-number").first()
        body_form = VersionBodyForm(initial={"body": latest.body if latest else ""})
        formset = FieldDeclarationFormSet(initial=latest.fields if latest else None)
        context = _write_context(request, template=template, body_form=body_form, formset=formset)
        return render(request, "communities/templates/write.html", context)
    body_form, formset = VersionBodyForm(request.POST), FieldDeclarationFormSet(request.POST)
    error = None
    if body_form.is_valid() and formset.is_valid():
        try:
            version = services.version_write(
                template=template,
                body=body_form.cleaned_data["body"],
                fields=declared_fields(formset),
                actor=request.user,
            )
        except ApplicationError as exc:
            error = exc.message
        else:
            messages.success(request, _("Version %(n)s written; it waits for an approver.") % {"n": version.number})
            return redirect("communities:template", template_id=template.pk)
    context = _write_context(request, template=template, body_form=body_form, formset=formset, error=error)
    return render(request, "communities/templates/write.html", context, status=400)


def _review(request, version_id: int, *, approve: bool):
    version = _version_or_404(version_id)
    form = ReviewForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        if approve:
            services.version_approve(version=version, actor=request.user, note=note)
            messages.success(request, _("Version %(n)s is approved and in use.") % {"n": version.number})
        else:
            services.version_reject(version=version, actor=request.user, note=note)
            messages.success(request, _("Version %(n)s is rejected.") % {"n": version.number})
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("communities:template", template_id=version.template_id)


@login_required
@require_POST
@permission_required("communities.approve_soptemplate", raise_exception=True)
def version_approve(request, version_id: int):
    return _review(request, version_id, approve=True)


@login_required
@require_POST
@permission_required("communities.approve_soptemplate", raise_exception=True)
def version_reject(request, version_id: int):
    return _review(request, version_id, approve=False)


@login_required
@permission_required("communities.view_soptemplate", raise_exception=True)
def version_preview(request, version_id: int):
    """GET only (it writes nothing): the version filled in for the customer chosen — or
    the sample customer — with the field values typed; a form with its errors otherwise."""
    version = _version_or_404(version_id)
    declared = version.fields or []
    groups = access.groups_visible(request.user).order_by("name")[:200]
    submitted = "preview" in request.GET
    if submitted:
        form = PreviewForm(request.GET, declared=declared, groups=groups)
    else:
        initial = {f"field_{k}": v for k, v in selectors.sample_field_values(declared).items()}
        form = PreviewForm(initial=initial, declared=declared, groups=groups)
    text, status = None, 200
    if submitted and form.is_valid():
        text, status = _preview_text(request, form, version)
    elif submitted:
        status = 400
    return render(
        request,
        "communities/templates/preview.html",
        {"version": version, "template": version.template, "form": form, "text": text},
        status=status,
    )


def _preview_text(request, form: PreviewForm, version) -> tuple[str | None, int]:
    customer = None
    external_id = form.cleaned_data["customer"].strip()
    try:
        group = access.group_get(request.user, form.cleaned_data["group"]) if form.cleaned_data["group"] else None
        if external_id:
            customer = selectors.preview_customer(external_id=external_id)
            if customer is None:
                form.add_error("customer", _("No customer with the external id %(id)s.") % {"id": external_id})
                return None, 400
        text = selectors.template_preview(
            version=version, customer=customer, group=group, fields=form.field_values(), operator=request.user
        )
    except ApplicationError as exc:
        if exc.code == "invalid_fields":
            form.add_field_errors(exc.details)
        else:
            form.add_error("group" if exc.code == "unknown_group" else None, exc.message)
        return None, exc.status_code
    return text, 200

"""Reads of SOP templates: the templates usable now (active, with an approved
version), one template's history (who wrote, who approved or rejected what, when), the
fixed context of a customer, and ``template_render`` — public, so the feedback queue's
canned replies and later the campaigns render through the same sandbox.

Templates belong to the whole team, not to a group: every operator with
``communities.view_soptemplate`` sees them all. What a group adds is the ``{{ group }}``
variable; the caller has checked the viewer may see that group (``access.group_get``)."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ApplicationError, NotFound
from core.models import AuditEntry
from core.timezones import operator_timezone
from incentives import selectors as incentives_selectors
from users.models import Customer

from .. import templating
from ..models import CommunityGroup, SopTemplate, SopTemplateVersion, VersionStatus

#: ``template_render``'s outputs, for other apps (the templating module is this app's own).
HTML, TEXT = templating.HTML, templating.TEXT


def templates_usable(*, kind: str | None = None, kinds=None, language: str | None = None) -> QuerySet[SopTemplate]:
    """Active templates with an approved version, optionally of ``kind`` (or any of
    ``kinds``) and ``language``; the approved version comes in the same query."""
    qs = SopTemplate.objects.filter(is_active=True, approved_version__isnull=False).select_related("approved_version")
    if kind:
        qs = qs.filter(kind=kind)
    if kinds is not None:
        qs = qs.filter(kind__in=list(kinds))
    if language:
        qs = qs.filter(language=language)
    return qs.order_by("kind", "name", "pk")


def template_list(*, kind: str = "", search: str = "") -> QuerySet[SopTemplate]:
    """Every template for the list page, with its version in use and the number of
    versions waiting for approval."""
    qs = SopTemplate.objects.select_related("approved_version").annotate(
        pending=Count("versions", filter=Q(versions__status=VersionStatus.PENDING))
    )
    if kind:
        qs = qs.filter(kind=kind)
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(code__icontains=search))
    return qs.order_by("kind", "name", "pk")


def template_get(*, template_id) -> SopTemplate:
    try:
        return SopTemplate.objects.select_related("approved_version").get(pk=int(template_id))
    except (SopTemplate.DoesNotExist, TypeError, ValueError):
        raise NotFound(_("No SOP template %(id)s.") % {"id": template_id}, code="unknown_template") from None


def template_by_code(*, code: str) -> SopTemplate | None:
    """The template with this code and its version in use, or ``None`` (campaigns and the
    messages API name templates by code)."""
    return (
        SopTemplate.objects.select_related("approved_version", "approved_version__template").filter(code=code).first()
    )


def version_get(*, version_id, template: SopTemplate | None = None) -> SopTemplateVersion:
    qs = SopTemplateVersion.objects.select_related("template", "written_by", "reviewed_by")
    if template is not None:
        qs = qs.filter(template=template)
    try:
        return qs.get(pk=int(version_id))
    except (SopTemplateVersion.DoesNotExist, TypeError, ValueError):
        raise NotFound(_("No template version %(id)s.") % {"id": version_id}, code="unknown_version") from None


def template_versions(*, template: SopTemplate) -> QuerySet[SopTemplateVersion]:
    """The versions, newest first, with who wrote and who reviewed each."""
    return template.versions.select_related("written_by", "reviewed_by").order_by("-number")


def template_history(*, template: SopTemplate) -> list[AuditEntry]:
    """The audit rows of the template and of its versions, newest first (two index
    lookups: the template's rows and its versions')."""
    version_ids = [str(pk) for pk in template.versions.values_list("pk", flat=True)]
    return list(
        AuditEntry.objects.filter(
            Q(object_type="communities.soptemplate", object_id=str(template.pk))
            | Q(object_type="communities.soptemplateversion", object_id__in=version_ids)
        )
        .select_related("actor")
        .order_by("-at", "-pk")
    )


def preview_customer(*, external_id: str) -> Customer | None:
    """The customer a preview is for (every operator who may preview sees customers)."""
    return Customer.objects.filter(external_id=external_id).first()


# --- the context ----------------------------------------------------------------------


def _person_name(user) -> str:
    if user is None or not getattr(user, "pk", None):
        return ""
    return (user.get_full_name() or "").strip() or user.get_username()


def _today(tz_name: str | None = None) -> str:
    try:
        tz = ZoneInfo(tz_name) if tz_name else operator_timezone()
    except (ZoneInfoNotFoundError, ValueError):
        tz = operator_timezone()
    return timezone.now().astimezone(tz).date().isoformat()


def template_context(
    *, customer: Customer | None = None, group: CommunityGroup | None = None, operator=None, extra: dict | None = None
) -> dict:
    """The fixed variables (``templating.VARIABLES``) for ``customer`` in ``group``,
    written by ``operator``; what is not known is an empty string (a customer's points
    are 0). ``extra`` sets variables the caller knows (a ticket's number and subject)
    and may name only variables."""
    unknown = set(extra or {}) - set(templating.VARIABLES)
    if unknown:
        raise ValueError(f"not template variables: {sorted(unknown)}")
    context = dict.fromkeys(templating.VARIABLES, "")
    context["points"] = 0
    context["operator"] = _person_name(operator)
    context["today"] = _today()
    if group is not None:
        context["group"] = group.name
    if customer is not None:
        context["nickname"] = customer.nickname or customer.name or customer.external_id
        context["points"] = incentives_selectors.points_summary(customer=customer)["balance"]
        level = incentives_selectors.customer_level(customer=customer)
        context["level"] = level["name"] if level else ""
        context["today"] = _today(customer.timezone)
    for name, value in (extra or {}).items():
        context[name] = "" if value is None else value
    return context


def sample_context(*, operator=None) -> dict:
    """The built-in sample customer of the previews (no database row behind it)."""
    context = template_context(operator=operator)
    context.update(
        nickname=_("Xiao Ming"),
        group=_("Morning runners"),
        points=1280,
        level=_("Gold member"),
        ticket="10001",
        subject=_("My parcel has not arrived"),
    )
    return context


def sample_field_values(fields: list[dict]) -> dict[str, str]:
    """A value of the right type for each declared field (the preview form's start)."""
    samples = {
        "text": _("sample text"),
        "number": "1",
        "date": _today(),
        "order_number": "SO20261203001",
    }
    return {f["name"]: samples[f["type"]] for f in fields}


# --- rendering ----------------------------------------------------------------------


def _version_of(template_or_version, *, preview: bool) -> SopTemplateVersion:
    if isinstance(template_or_version, SopTemplateVersion):
        version = template_or_version
        if not preview and version.status != VersionStatus.APPROVED:
            raise ApplicationError(
                _("Version %(n)s of “%(name)s” is not approved; only the approved version is used.")
                % {"n": version.number, "name": version.template.name},
                code="template_not_approved",
                details={"version": version.pk},
            )
        return version
    template = template_or_version
    if not template.is_active or template.approved_version_id is None:
        raise ApplicationError(
            _("The template “%(name)s” has no approved version in use.") % {"name": template.name},
            code="template_not_approved",
            details={"template": template.pk},
        )
    return template.approved_version


def template_render(
    template_or_version,
    *,
    customer: Customer | None = None,
    group: CommunityGroup | None = None,
    fields: dict | None = None,
    operator=None,
    extra: dict | None = None,
    context: dict | None = None,
    output: str = templating.HTML,
    preview: bool = False,
) -> str:
    """The text of an SOP template for ``customer`` in ``group`` with the operator's
    ``fields`` (checked by type: ``invalid_fields`` with a reason per field).

    A ``SopTemplate`` renders its approved version (``template_not_approved`` when it has
    none or is inactive); a ``SopTemplateVersion`` must be the approved one unless
    ``preview`` (a reviewer reads a pending version before approving it). ``context``
    replaces the customer's variables outright (the sample customer of the preview).
    ``output`` is ``templating.HTML`` (escaped; the default) or ``templating.TEXT`` for a
    plain-text destination that escapes on display."""
    version = _version_of(template_or_version, preview=preview)
    values = templating.fields_clean(version.fields or [], fields)
    if context is None:
        context = template_context(customer=customer, group=group, operator=operator, extra=extra)
    return templating.body_render(version.body, {**context, **values}, output=output)


def template_preview(
    *, version: SopTemplateVersion, customer: Customer | None = None, group=None, fields=None, operator=None
) -> str:
    """A version (pending ones too) rendered for ``customer`` — or the built-in sample
    customer when none is given — as the plain text that would be sent."""
    context = (
        sample_context(operator=operator)
        if customer is None
        else template_context(customer=customer, group=group, operator=operator)
    )
    if customer is None and group is not None:
        context["group"] = group.name
    return template_render(version, fields=fields, context=context, output=templating.TEXT, preview=True)

"""Writes of SOP templates: create one (with its first version), change its name, type,
language or active flag, write a new version, approve or reject a version.

Every version is checked before anything is written (``communities.templating``:
syntax, the variables, what the sandbox allows, the declared fields) and is saved as
*waiting for approval*; nothing uses it until an approver approves it. Approving
supersedes the version in use and makes the new one ``SopTemplate.approved_version``.

Who may do what (``core.roles``): writing templates and versions takes
``communities.add_soptemplate`` / ``add_soptemplateversion`` (community managers and
admins; group admins edit no template); approving and rejecting take
``communities.approve_soptemplate`` (admins). Four eyes: nobody approves a version they
wrote — not even an admin — so every text customers see was read by a second person.
A writer who wants their pending version gone asks an approver to reject it. ``actor``
``None`` (or a label such as a seed command's name) is the system: it may write, never
approve. A version older than the one in use cannot be approved (it would silently
undo a newer text): write it again as a new version."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ApplicationError, Conflict
from core.services import audit_record, audit_snapshot

from .. import templating
from ..models import SopTemplate, SopTemplateVersion, TemplateKind, VersionStatus

TEMPLATE_FIELDS = ["code", "name", "kind", "language", "is_active"]
LANGUAGES = ("zh-hans", "en")
NOTE_MAX = SopTemplateVersion._meta.get_field("review_note").max_length


def _is_user(actor) -> bool:
    return getattr(actor, "pk", None) is not None


def _require_perm(actor, perm: str, *, system_ok: bool = True) -> None:
    if not _is_user(actor):
        if system_ok:
            return
        raise ApplicationError(_("Only a person may do this."), code="permission_denied", status=403)
    if not actor.is_active or not actor.has_perm(perm):
        raise ApplicationError(
            _("You may not do this with SOP templates."),
            code="permission_denied",
            status=403,
            details={"permission": perm},
        )


def _check_meta(*, code: str, name: str, kind: str, language: str) -> None:
    if not code or not name.strip():
        raise ApplicationError(_("A template needs a code and a name."), code="invalid", details={"name": ["empty"]})
    if kind not in TemplateKind.values:
        raise ApplicationError(
            _("Unknown template type %(kind)s.") % {"kind": kind}, code="invalid", details={"kind": [kind]}
        )
    if language not in LANGUAGES:
        raise ApplicationError(
            _("Unknown language %(lang)s; one of %(langs)s.") % {"lang": language, "langs": ", ".join(LANGUAGES)},
            code="invalid",
            details={"language": [language]},
        )


def version_check(*, body: str, fields) -> tuple[list[dict], list[str]]:
    """``(fields, variables)`` cleaned, or the ``ApplicationError`` the save would raise
    (the admin's and the pages' forms call it to show the reason on the form)."""
    cleaned = templating.fields_check(fields)
    return cleaned, templating.body_check(body, cleaned)


def _version_audit(version: SopTemplateVersion) -> dict:
    return {
        "template": version.template.code,
        "number": version.number,
        "body": version.body,
        "fields": version.fields,
        "status": version.status,
    }


def template_create(
    *,
    code: str,
    name: str,
    kind: str,
    body: str,
    fields=None,
    language: str = "zh-hans",
    actor=None,
) -> SopTemplate:
    """A new template with version 1 waiting for approval; refused whole (nothing
    written) when the body or fields are refused or the code is taken."""
    _require_perm(actor, "communities.add_soptemplate")
    code, name = (code or "").strip(), (name or "").strip()
    _check_meta(code=code, name=name, kind=kind, language=language)
    cleaned, variables = version_check(body=body, fields=fields)
    template = SopTemplate(code=code, name=name, kind=kind, language=language)
    try:
        template.full_clean(exclude=["approved_version"], validate_unique=True)
    except ValidationError as exc:  # a bad slug or a code already taken
        details = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        raise ApplicationError(str(next(iter(details.values()))[0]), code="invalid", details=details) from None
    with transaction.atomic():
        template.save()
        audit_record(
            actor=actor, action="sop_template.create", obj=template, after=audit_snapshot(template, TEMPLATE_FIELDS)
        )
        version = SopTemplateVersion.objects.create(
            template=template,
            number=1,
            body=body,
            fields=cleaned,
            variables=variables,
            written_by=actor if _is_user(actor) else None,
        )
        audit_record(actor=actor, action="sop_template_version.write", obj=version, after=_version_audit(version))
    return template


def template_update(*, template: SopTemplate, actor=None, **changes) -> SopTemplate:
    """Changes the name, type, language or active flag (never the text: that is a new
    version). Deactivating takes the template out of use at once."""
    _require_perm(actor, "communities.change_soptemplate")
    unknown = set(changes) - {"name", "kind", "language", "is_active"}
    if unknown:
        raise ApplicationError(
            _("These cannot be changed here: %(f)s.") % {"f": ", ".join(sorted(unknown))}, code="invalid"
        )
    with transaction.atomic():
        stored = SopTemplate.objects.select_for_update().get(pk=template.pk)
        before = audit_snapshot(stored, TEMPLATE_FIELDS)
        for name, value in changes.items():
            if name == "is_active":
                value = bool(value)
            setattr(stored, name, value.strip() if isinstance(value, str) else value)
        _check_meta(code=stored.code, name=stored.name, kind=stored.kind, language=stored.language)
        stored.save(update_fields=[*changes])
        audit_record(
            actor=actor,
            action="sop_template.update",
            obj=stored,
            before=before,
            after=audit_snapshot(stored, TEMPLATE_FIELDS),
        )
    return stored


def version_write(*, template: SopTemplate, body: str, fields=None, actor=None) -> SopTemplateVersion:
    """A new version (the next number) waiting for approval. The version in use stays
    in use until this one is approved."""
    _require_perm(actor, "communities.add_soptemplateversion")
    cleaned, variables = version_check(body=body, fields=fields)
    with transaction.atomic():
        locked = SopTemplate.objects.select_for_update().get(pk=template.pk)
        number = (locked.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version = SopTemplateVersion.objects.create(
            template=locked,
            number=number,
            body=body,
            fields=cleaned,
            variables=variables,
            written_by=actor if _is_user(actor) else None,
        )
        audit_record(actor=actor, action="sop_template_version.write", obj=version, after=_version_audit(version))
    return version


def _locked_pending(version: SopTemplateVersion) -> tuple[SopTemplate, SopTemplateVersion]:
    template = SopTemplate.objects.select_for_update().get(pk=version.template_id)
    locked = SopTemplateVersion.objects.select_for_update().get(pk=version.pk)
    if locked.status != VersionStatus.PENDING:
        raise Conflict(
            _("Version %(n)s is %(status)s, not waiting for approval.")
            % {"n": locked.number, "status": locked.get_status_display()},
            code="version_not_pending",
            details={"status": locked.status},
        )
    return template, locked


def _note(note: str) -> str:
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ApplicationError(
            _("The note is longer than %(n)s characters.") % {"n": NOTE_MAX}, code="invalid", details={"note": ["long"]}
        )
    return note


def version_approve(*, version: SopTemplateVersion, actor, note: str = "") -> SopTemplateVersion:
    """Approves a pending version: it becomes the one in use and the one it replaces is
    superseded. Refused to anyone without ``communities.approve_soptemplate`` (403), to
    the version's writer (403 ``own_version``), for a version not pending (409) or older
    than the one in use (409 ``stale_version``), and for a body today's rules refuse."""
    _require_perm(actor, "communities.approve_soptemplate", system_ok=False)
    note = _note(note)
    with transaction.atomic():
        template, locked = _locked_pending(version)
        if locked.written_by_id is not None and locked.written_by_id == actor.pk:
            raise ApplicationError(
                _("You wrote this version: another approver must approve it."), code="own_version", status=403
            )
        current = (
            SopTemplateVersion.objects.select_for_update().filter(pk=template.approved_version_id).first()
            if template.approved_version_id
            else None
        )
        if current is not None and current.number > locked.number:
            raise Conflict(
                _("Version %(v)s is older than version %(c)s in use; write it again as a new version.")
                % {"v": locked.number, "c": current.number},
                code="stale_version",
            )
        version_check(body=locked.body, fields=locked.fields)
        now = timezone.now()
        if current is not None:
            current.status = VersionStatus.SUPERSEDED
            current.save(update_fields=["status"])
            audit_record(
                actor=actor,
                action="sop_template_version.supersede",
                obj=current,
                changes={"status": [VersionStatus.APPROVED, VersionStatus.SUPERSEDED], "by_version": locked.number},
            )
        locked.status, locked.reviewed_by, locked.reviewed_at, locked.review_note = (
            VersionStatus.APPROVED,
            actor,
            now,
            note,
        )
        locked.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_note"])
        audit_record(
            actor=actor,
            action="sop_template_version.approve",
            obj=locked,
            changes={"status": [VersionStatus.PENDING, VersionStatus.APPROVED], "note": note},
        )
        template.approved_version = locked
        template.save(update_fields=["approved_version"])
        audit_record(
            actor=actor,
            action="sop_template.version_in_use",
            obj=template,
            changes={"approved_version": [current.number if current else None, locked.number]},
        )
    return locked


def version_reject(*, version: SopTemplateVersion, actor, note: str) -> SopTemplateVersion:
    """Rejects a pending version with the reason (required: the writer learns what to
    change). The version in use, if any, stays in use."""
    _require_perm(actor, "communities.approve_soptemplate", system_ok=False)
    note = _note(note)
    if not note:
        raise ApplicationError(_("Say why the version is rejected."), code="invalid", details={"note": ["required"]})
    with transaction.atomic():
        _template, locked = _locked_pending(version)
        locked.status, locked.reviewed_by, locked.reviewed_at, locked.review_note = (
            VersionStatus.REJECTED,
            actor,
            timezone.now(),
            note,
        )
        locked.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_note"])
        audit_record(
            actor=actor,
            action="sop_template_version.reject",
            obj=locked,
            changes={"status": [VersionStatus.PENDING, VersionStatus.REJECTED], "note": note},
        )
    return locked

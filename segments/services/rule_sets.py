"""Rule sets: the active one, and saving an edit as a new version."""

from django.db import transaction
from django.utils.translation import gettext as _

from core.errors import ApplicationError
from core.services import audit_record

from .. import rules
from ..models import RuleSet


def rule_set_active() -> RuleSet:
    rule_set = RuleSet.objects.filter(is_active=True).order_by("-version").first()
    if rule_set is None:
        raise ApplicationError(_("No active segment rule set: add one in the admin."), code="no_rule_set")
    return rule_set


def rule_set_save_new_version(*, base: RuleSet, changes: dict, actor=None, note: str = "") -> RuleSet:
    """Saves an edit as a new version (old versions stay, so every score keeps its rules)."""
    # Every rule field is copied, not only the thresholds (e.g. the CLV horizon).
    rule_fields = [
        f.name
        for f in RuleSet._meta.concrete_fields
        if f.name not in ("id", "version", "is_active", "note", "created_at", "created_by")
    ]
    fields = {f: getattr(base, f) for f in rule_fields}
    unknown = set(changes) - set(rule_fields)
    if unknown:
        raise ApplicationError(
            _("Unknown rule field(s): %(fields)s.") % {"fields": ", ".join(sorted(unknown))}, code="invalid_rule_set"
        )
    fields.update(changes)
    candidate = RuleSet(**fields, note=note or base.note)
    errors = rules.validate_rule_set(candidate)
    if errors:
        raise ApplicationError(_("The rule set makes no sense."), code="invalid_rule_set", details=errors)
    with transaction.atomic():
        last = RuleSet.objects.select_for_update().order_by("-version").first()
        candidate.version = (last.version if last else 0) + 1
        candidate.created_by = actor if getattr(actor, "pk", None) else None
        candidate.save()
        RuleSet.objects.exclude(pk=candidate.pk).update(is_active=False)
        audit_record(
            actor=actor,
            action="segments.rule_set.new_version",
            obj=candidate,
            changes={k: [str(getattr(base, k)), str(v)] for k, v in changes.items() if getattr(base, k) != v},
        )
    return candidate

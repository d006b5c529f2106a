"""The admin-set community thresholds (one row): checked and saved with the audit row.

The bounds are this module's choice: an incident window of 1 minute to 7 days (one
incident per group a week is already coarse; 0 would make every hit its own incident),
a repeat window of 1 to 365 days for risk members, and a ticket severity that is one of
the alert severities."""

from django.db import transaction
from django.utils.translation import gettext as _

from core.errors import ApplicationError
from core.services import audit_record, audit_snapshot

from ..models import CommunitySettings, Severity

FIELDS = ["ticket_severity", "incident_window_minutes", "risk_repeat_days"]
INCIDENT_WINDOW_MINUTES = (1, 7 * 24 * 60)
RISK_REPEAT_DAYS = (1, 365)


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def settings_problems(*, row: CommunitySettings) -> dict[str, list[str]]:
    """``{field: [message]}`` for each value out of its range (empty when all are fine)."""
    problems: dict[str, list[str]] = {}
    if not _whole(row.ticket_severity) or row.ticket_severity not in Severity.values:
        bounds = {"low": min(Severity.values), "high": max(Severity.values)}
        problems["ticket_severity"] = [_("The severity is one of %(low)s to %(high)s.") % bounds]
    low, high = INCIDENT_WINDOW_MINUTES
    if not _whole(row.incident_window_minutes) or not low <= row.incident_window_minutes <= high:
        problems["incident_window_minutes"] = [
            _("The incident window is %(low)s to %(high)s minutes.") % {"low": low, "high": high}
        ]
    low, high = RISK_REPEAT_DAYS
    if not _whole(row.risk_repeat_days) or not low <= row.risk_repeat_days <= high:
        problems["risk_repeat_days"] = [
            _("The repeat window is %(low)s to %(high)s days.") % {"low": low, "high": high}
        ]
    return problems


def community_settings_save(*, row: CommunitySettings, actor) -> CommunitySettings:
    """Saves the one settings row (its key is always 1), refusing values out of range
    with ``details`` by field; nothing is written when one is refused."""
    problems = settings_problems(row=row)
    if problems:
        raise ApplicationError(next(iter(problems.values()))[0], code="invalid", details=problems)
    row.pk = 1
    with transaction.atomic():
        stored = CommunitySettings.objects.select_for_update().filter(pk=1).first()
        before = audit_snapshot(stored, FIELDS) if stored is not None else None
        row.save(force_insert=stored is None, force_update=stored is not None)
        audit_record(
            actor=actor,
            action="community_settings.update" if stored is not None else "community_settings.create",
            obj=row,
            before=before or {},
            after=audit_snapshot(row, FIELDS),
        )
    return row

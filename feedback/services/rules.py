"""Writes for the rules admins edit: business calendars and their dates, teams, SLA
policies, the priority matrix, the VIP rule and canned replies.

One write path: the admin's save, delete, inline and list edits all come here. Each
save checks the row (``rule_check`` — the admin form runs the same check first, so a
refused edit is a form error with this module's message and nothing is written), saves
it and leaves one audit row with the fields that moved, ``{field: [from, to]}``; a
delete records the values the row had. Running SLA targets keep the due times they
have; they take a changed calendar or policy at their next pause, resume or
re-prioritisation (``feedback.services.clock``)."""

import functools
import re
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models, transaction
from django.db.models.deletion import ProtectedError, RestrictedError
from django.template import Context, Template, TemplateDoesNotExist, TemplateSyntaxError
from django.utils.translation import gettext as _

from core.errors import ApplicationError, Conflict
from core.services import audit_record, audit_snapshot
from core.validation import DATE_MAX, DATE_MIN, has_bad_text
from segments.models import Tier

from ..models import PRIORITY_ORDER, BusinessCalendar, CalendarDate, CannedReply, PriorityRule, SlaPolicy, Team, VipRule
from ..sla import working_time_errors, working_time_problems

RULE_MODELS = (BusinessCalendar, CalendarDate, Team, SlaPolicy, PriorityRule, VipRule, CannedReply)

#: the longest target a policy may set: the clock's due times must stay within the accepted instants
MAX_TARGET_MINUTES = 366 * 24 * 60
#: an RFM group code as segments stores it (CustomerScore.rfm_group is 20 characters)
_RFM_CODE = re.compile(r"^[A-Za-z0-9_\-]{1,20}$")
#: what a canned reply is rendered with when it is checked (the queue page fills in the real values)
SAMPLE_CONTEXT = {"customer_name": "张伟", "ticket_id": 1, "subject": "—", "operator_name": "—"}


@dataclass(frozen=True)
class Problem:
    field: str
    code: str
    message: str


# --- checks ------------------------------------------------------------------------


def calendar_errors(weekly_hours) -> list[str]:
    """What is wrong with a calendar's weekly hours (``feedback.sla`` states the rules)."""
    return working_time_errors(weekly_hours)


@functools.cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _calendar_problems(obj: BusinessCalendar, _members) -> list[Problem]:
    problems = [
        Problem("weekly_hours", code, m)
        for code, m in working_time_problems(obj.weekly_hours, getattr(obj, "workday_hours", None))
    ]
    if obj.timezone not in _timezones():
        problems.append(
            Problem("timezone", "calendar_timezone_unknown", _("Unknown timezone %(tz)s.") % {"tz": obj.timezone})
        )
    return problems


def _calendar_date_problems(obj: CalendarDate, _members) -> list[Problem]:
    if obj.date is not None and not DATE_MIN <= obj.date <= DATE_MAX:
        message = _("Enter a date between %(min)s and %(max)s.") % {"min": DATE_MIN, "max": DATE_MAX}
        return [Problem("date", "calendar_date_out_of_range", message)]
    return []


def _can_work_tickets(user) -> bool:
    return user.is_active and user.has_perm("feedback.change_ticket")


def _team_problems(obj: Team, members) -> list[Problem]:
    if members is None:
        members = list(obj.members.all()) if obj.pk else []
    problems = [
        Problem(
            "members",
            "team_member_not_allowed",
            _("%(user)s cannot work tickets, so cannot be in a team.") % {"user": user.get_username()},
        )
        for user in members
        if not _can_work_tickets(user)
    ]
    lead = obj.lead
    if lead is not None and not (_can_work_tickets(lead) and (lead.is_staff or lead in members)):
        problems.append(
            Problem(
                "lead",
                "team_lead_not_allowed",
                _("The team lead must be a member of the team, or an admin, who can work tickets; %(user)s is not.")
                % {"user": lead.get_username()},
            )
        )
    return problems


def _sla_policy_problems(obj: SlaPolicy, _members) -> list[Problem]:
    problems = []
    share = obj.warn_share
    if share is None or not Decimal(0) < Decimal(share) < Decimal(1):
        problems.append(
            Problem(
                "warn_share",
                "sla_warn_share_invalid",
                _("The warning share must lie between 0 and 1 (0.80 warns at 80%%); %(value)s does not.")
                % {"value": share},
            )
        )
    for field in ("first_response_minutes", "resolution_minutes"):
        minutes = getattr(obj, field)
        if minutes is not None and not 0 < minutes <= MAX_TARGET_MINUTES:
            problems.append(
                Problem(
                    field,
                    "sla_minutes_invalid",
                    _("A target is more than 0 and at most %(max)s minutes, or empty for none.")
                    % {"max": MAX_TARGET_MINUTES},
                )
            )
    if obj.first_response_minutes is None and obj.resolution_minutes is None:
        problems.append(Problem(NON_FIELD_ERRORS, "sla_no_target", _("An SLA policy needs at least one target.")))
    return problems


def _code_list(value) -> list | None:
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def _vip_problems(obj: VipRule, _members) -> list[Problem]:
    problems = []
    tiers, groups = _code_list(obj.tiers), _code_list(obj.rfm_groups)
    if tiers is None:
        problems.append(Problem("tiers", "vip_tier_unknown", _('Value tiers are a list of codes, e.g. ["super_vip"].')))
    else:
        unknown = [t for t in tiers if t not in Tier.values]
        if unknown:
            known = ", ".join(f"{value} ({label})" for value, label in Tier.choices)
            message = _("Unknown value tier(s) %(tiers)s; known: %(known)s.") % {
                "tiers": ", ".join(unknown),
                "known": known,
            }
            problems.append(Problem("tiers", "vip_tier_unknown", message))
    if groups is None or not all(_RFM_CODE.match(g) for g in groups):
        problems.append(
            Problem(
                "rfm_groups",
                "vip_rfm_group_invalid",
                _('RFM groups are a list of short codes (letters, digits, _ or -, at most 20), e.g. ["high_value"].'),
            )
        )
    if tiers == [] and groups == []:
        problems.append(
            Problem(NON_FIELD_ERRORS, "vip_matches_nobody", _("A VIP rule needs at least one value tier or RFM group."))
        )
    if not 1 <= (obj.raise_by or 0) <= len(PRIORITY_ORDER) - 1:
        problems.append(
            Problem(
                "raise_by",
                "vip_raise_invalid",
                _("Raise by 1 to %(max)s steps.") % {"max": len(PRIORITY_ORDER) - 1},
            )
        )
    return problems


def _canned_reply_problems(obj: CannedReply, _members) -> list[Problem]:
    body = obj.body or ""
    try:
        # Rendered as the queue page renders it: a tag that only fails at render time counts too.
        Template(body).render(Context(SAMPLE_CONTEXT, autoescape=False))
    except (TemplateSyntaxError, TemplateDoesNotExist) as exc:
        return [
            Problem(
                "body",
                "canned_reply_template_invalid",
                _("The body is not a valid template: %(error)s") % {"error": exc},
            )
        ]
    return []


def _no_problems(_obj, _members) -> list[Problem]:
    return []


_CHECKS = {
    BusinessCalendar: _calendar_problems,
    CalendarDate: _calendar_date_problems,
    Team: _team_problems,
    SlaPolicy: _sla_policy_problems,
    PriorityRule: _no_problems,  # its three inputs and the priority are choices the model checks
    VipRule: _vip_problems,
    CannedReply: _canned_reply_problems,
}


def _model_problems(obj: models.Model) -> list[Problem]:
    """The model's own field, uniqueness and constraint checks. Its ``clean()`` is left
    out: what it checks (a calendar's hours) ``rule_check`` checks too, with the
    specific codes."""
    problems: list[Problem] = []
    for check in (obj.clean_fields, obj.validate_unique, obj.validate_constraints):
        try:
            check()
        except ValidationError as exc:
            problems += [
                Problem(field, "invalid", str(message))
                for field, messages in exc.message_dict.items()
                for message in messages
            ]
    return problems


def _text_problems(obj: models.Model) -> list[Problem]:
    return [
        Problem(f.name, "text_characters", _("Text must not contain NUL characters or unpaired surrogates."))
        for f in obj._meta.concrete_fields
        if isinstance(getattr(obj, f.attname, None), str) and has_bad_text(getattr(obj, f.attname))
    ]


def _raise(problems: list[Problem]) -> None:
    if problems:
        raise ApplicationError(
            " ".join(p.message for p in problems),
            code=problems[0].code,
            details={"errors": [{"field": p.field, "code": p.code, "message": p.message} for p in problems]},
        )


def _kind(obj: models.Model):
    model = type(obj)
    if model not in _CHECKS:
        raise TypeError(f"{model.__name__} is not a feedback rule model")
    return model


def rule_check(*, obj: models.Model, members=None) -> None:
    """Raises ``ApplicationError`` when the row may not be saved as it is; ``details.errors``
    lists every problem as ``{field, code, message}`` (``__all__`` for the whole row).
    ``members``: a team's members as they are to be (the stored ones when None)."""
    model = _kind(obj)
    _raise(_text_problems(obj) + _CHECKS[model](obj, members))


def rule_problems(exc: ApplicationError) -> list[tuple[str, str]]:
    """(field, message) of a refusal from this module, for a form to show each where it belongs."""
    errors = (exc.details or {}).get("errors") if isinstance(exc.details, dict) else None
    return [(e["field"], e["message"]) for e in errors] if errors else [(NON_FIELD_ERRORS, exc.message)]


# --- writes ------------------------------------------------------------------------


def _snapshot(obj: models.Model, members=None) -> dict:
    out = audit_snapshot(obj)
    if isinstance(obj, Team):
        people = members if members is not None else (obj.members.all() if obj.pk else [])
        out["members"] = sorted(u.get_username() for u in people)
    return out


def rule_save(*, obj: models.Model, actor, changed_fields=None, members=None) -> models.Model:
    """Checks, saves and audits one rule row (``<model>.create`` / ``<model>.change``);
    an unchanged row writes nothing. ``changed_fields`` (the admin form's changed data)
    limits an edit to those fields, so two admins editing different fields of a row do
    not undo each other; ``members`` sets a team's members in the same transaction."""
    model = _kind(obj)
    problems = _model_problems(obj)
    _raise(problems)
    rule_check(obj=obj, members=members)
    with transaction.atomic():
        stored = model.objects.select_for_update().filter(pk=obj.pk).first() if obj.pk else None
        before = _snapshot(stored) if stored is not None else None
        after = _snapshot(obj, members)
        fields = None
        if stored is not None and changed_fields is not None:
            fields = [name for name in after if name in changed_fields and name != "members"]
            after = {**before, **{name: after[name] for name in fields}}
            if members is not None:
                after["members"] = sorted(u.get_username() for u in members)
        if before == after:
            return obj
        if fields is None:
            obj.save()
        elif fields:
            obj.save(update_fields=[*fields, *(["updated_at"] if hasattr(obj, "updated_at") else [])])
        if members is not None:
            obj.members.set(members)
        audit_record(
            actor=actor,
            action=f"{model._meta.model_name}.{'create' if before is None else 'change'}",
            obj=obj,
            before=before or {},
            after=after,
        )
    return obj


def rule_delete(*, obj: models.Model, actor) -> None:
    """Deletes a rule row with its audit row; a row still in use (a calendar a team or a
    ticket's clock uses, a team with tickets) is refused (409) and nothing is written."""
    model = _kind(obj)
    try:
        with transaction.atomic():
            # The audit row first: it names the primary key the delete clears.
            audit_record(
                actor=actor, action=f"{model._meta.model_name}.delete", obj=obj, before=_snapshot(obj), after={}
            )
            obj.delete()
    except (ProtectedError, RestrictedError):
        raise Conflict(
            _("%(object)s is still in use and cannot be deleted.") % {"object": obj}, code="rule_in_use"
        ) from None

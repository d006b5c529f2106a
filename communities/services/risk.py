"""Risk members (malicious marketing, abuse): graded handling — warn, mute, remove —
with a record of who did what, when and why.

Choices made where SPEC.md and the issue are silent:

- **Repeats count per group.** A member's earlier actions in *this* group within
  ``CommunitySettings.risk_repeat_days`` (counted back from now, the boundary day
  included) make the floor: the step after the highest of them (warn → mute → remove;
  remove stays remove). What happened in another group is that group's business.
- **Asked for less than the floor, the floor is applied.** Escalation is the rule, so
  a warn asked for a member warned last week becomes a mute; the record keeps both
  (``requested_step`` warn, ``step`` mute), so the screen and the 360 page show that it
  was escalated. Asked for *more* than the floor (removing a spammer on sight), the
  step asked for is applied: the ladder is a floor, not a ceiling.
- **A mute needs a duration**, from 1 minute to ``MUTE_MAX`` (30 days, what the
  platforms allow at most), given as ``mute_minutes`` or ``mute_until``. It is needed
  whenever the step *applied* is mute — also when a warn escalates to one, so the
  operator is told before anything is written; the form shows the member's next step.
  A duration given with a step that ends up warn or remove is not stored.
- **Remove** closes the membership through ``groups.member_leave`` (its own audit row),
  with ``left_reason`` ``risk:<reason> #<action id>``, in the same transaction.
- The member's open span is locked while the record is written, so two operators
  acting on one member at once are put in order and the second one escalates."""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ApplicationError
from core.services import audit_record
from users.models import Customer

from .. import access
from ..models import RISK_STEPS, CommunityGroup, Membership, RiskAction, RiskReason, RiskStep
from ..selectors.risk import risk_floor_step
from ..selectors.settings import settings_get
from . import groups as group_services

MUTE_MAX = timedelta(days=30)
NOTE_MAX = 500


def _invalid(message: str, field: str, value, code: str = "invalid") -> ApplicationError:
    return ApplicationError(message, code=code, details={field: [str(value)]})


def _checked(*, requested_step: str, reason: str, note: str) -> str:
    if requested_step not in RiskStep.values:
        raise _invalid(
            _("Unknown step %(step)s; one of %(steps)s.") % {"step": requested_step, "steps": ", ".join(RISK_STEPS)},
            "requested_step",
            requested_step,
        )
    if reason not in RiskReason.values:
        raise _invalid(
            _("Unknown reason %(reason)s; one of %(reasons)s.")
            % {"reason": reason, "reasons": ", ".join(RiskReason.values)},
            "reason",
            reason,
        )
    note = (note or "").strip()
    if not note:
        raise _invalid(_("Say why: the note is required."), "note", "blank")
    if len(note) > NOTE_MAX:
        raise _invalid(_("The note is at most %(n)s characters.") % {"n": NOTE_MAX}, "note", "too long")
    return note


def _mute_end(*, at: datetime, mute_minutes: int | None, mute_until: datetime | None) -> datetime | None:
    """When a mute given as minutes or as an end ends (None when no duration was given)."""
    if mute_minutes is not None and mute_until is not None:
        raise _invalid(_("Give the mute as minutes or as an end time, not both."), "mute_until", "both")
    if mute_minutes is not None:
        if isinstance(mute_minutes, bool) or not isinstance(mute_minutes, int) or mute_minutes < 1:
            raise _invalid(_("A mute lasts at least one minute."), "mute_minutes", mute_minutes)
        mute_until = at + timedelta(minutes=mute_minutes)
    if mute_until is None:
        return None
    if timezone.is_naive(mute_until):
        raise _invalid(_("The end of the mute needs a timezone."), "mute_until", mute_until)
    if mute_until <= at:
        raise _invalid(_("The end of the mute must be in the future."), "mute_until", mute_until.isoformat())
    if mute_until - at > MUTE_MAX:
        raise _invalid(
            _("A mute lasts at most %(days)s days.") % {"days": MUTE_MAX.days}, "mute_until", mute_until.isoformat()
        )
    return mute_until


def risk_step_applied(*, requested_step: str, floor: str | None) -> str:
    """The step applied: the one asked for, raised to the escalation floor if below it."""
    if floor is None:
        return requested_step
    return RISK_STEPS[max(RISK_STEPS.index(requested_step), RISK_STEPS.index(floor))]


def risk_action_record(
    *,
    group: CommunityGroup,
    customer: Customer,
    requested_step: str,
    reason: str,
    note: str,
    actor,
    mute_minutes: int | None = None,
    mute_until: datetime | None = None,
) -> RiskAction:
    """Records one action on a member of the group and carries it out (a removal closes
    the membership). ``actor`` None is the system (no right checked); an operator needs
    the group's ``handle_risk`` right (404 when they may not see the group, 403 without
    the right). Refusals write nothing."""
    if actor is not None:
        access.require(actor, group, access.HANDLE_RISK)
    note = _checked(requested_step=requested_step, reason=reason, note=note)
    if mute_minutes is not None or mute_until is not None:  # refused before any lock is taken
        _mute_end(at=timezone.now(), mute_minutes=mute_minutes, mute_until=mute_until)
    window_days = settings_get().risk_repeat_days
    with transaction.atomic():
        span = (
            Membership.objects.select_for_update().filter(group=group, customer=customer, left_at__isnull=True).first()
        )
        if span is None:
            raise ApplicationError(
                _("%(customer)s is not a member of %(group)s.")
                % {"customer": customer.external_id, "group": group.name},
                code="not_member",
                status=404,
                details={"customer": [customer.external_id]},
            )
        # The time is read once the lock is held, so the record's order is the order of the locks.
        at = timezone.now()
        duration_end = _mute_end(at=at, mute_minutes=mute_minutes, mute_until=mute_until)
        floor = risk_floor_step(group=group, customer=customer, window_days=window_days, now=at)
        step = risk_step_applied(requested_step=requested_step, floor=floor)
        if step == RiskStep.MUTE and duration_end is None:
            raise ApplicationError(
                _("A mute needs a duration.")
                if requested_step == RiskStep.MUTE
                else _("This is a repeat within %(days)s days, so it escalates to a mute: give its duration.")
                % {"days": window_days},
                code="mute_duration_required",
                details={"mute_minutes": ["required"], "step": [step]},
            )
        action = RiskAction.objects.create(
            group=group,
            customer=customer,
            step=step,
            requested_step=requested_step,
            reason=reason,
            note=note,
            actor=actor if getattr(actor, "pk", None) else None,
            at=at,
            mute_until=duration_end if step == RiskStep.MUTE else None,
        )
        audit_record(
            actor=actor,
            action="risk_action.record",
            obj=action,
            changes={
                "group": [None, group.code],
                "customer": [None, customer.external_id],
                "requested_step": [None, requested_step],
                "step": [None, step],
                "reason": [None, reason],
                "note": [None, note],
                "mute_until": [None, action.mute_until.isoformat() if action.mute_until else None],
                "escalation_floor": [None, floor],
            },
        )
        if step == RiskStep.REMOVE:
            group_services.member_leave(
                group=group,
                customer=customer,
                left_at=at,
                reason=f"risk:{reason} #{action.pk}",
                actor=actor,
                right=access.HANDLE_RISK,  # removing is handling a risk member, not managing the group
            )
    return action

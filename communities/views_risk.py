"""The risk-member pages of a group: its record (who is muted now, every action with
who, when and why, each member's next step) and the form to warn, mute or remove a
member.

Who may do what (``communities.access``): a group the operator may not see is 404 on
both pages. Acting needs ``communities.add_riskaction`` and the group's ``handle_risk``
right (its owner, a manager given it, a group admin with "can handle risk members"),
403 otherwise. The record is for those who may act, and for the roles that read every
group (operators, viewers, admins); a group admin without the right gets 403 there too,
since 分级管理 gives them only what was ticked."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from core.errors import ApplicationError, NotFound
from users import selectors as users_selectors

from . import access
from .forms_risk import RiskActionForm
from .models import RISK_STEPS, CommunityGroup, RiskStep
from .selectors import risk as risk_selectors
from .selectors.settings import settings_get
from .services import risk as risk_services


def _group(request, group_id: int) -> CommunityGroup:
    try:
        return access.group_get(request.user, group_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _may_act(user, group: CommunityGroup) -> bool:
    return user.has_perm("communities.add_riskaction") and access.HANDLE_RISK in access.rights_of(user, group)


def _ladder(window_days: int) -> list[str]:
    """The escalation as the pages explain it, one line a rung."""
    return [
        _("1st time: the step you choose."),
        _("2nd within %(days)s days: at least mute.") % {"days": window_days},
        _("3rd within %(days)s days: remove.") % {"days": window_days},
    ]


def _step_label(step: str | None) -> str | None:
    return RiskStep(step).label if step else None


def _ctx(group: CommunityGroup, window_days: int, **extra) -> dict:
    return {
        "group": group,
        "window_days": window_days,
        "ladder": _ladder(window_days),
        "display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE,
        **extra,
    }


@login_required
@permission_required("communities.view_riskaction", raise_exception=True)
def risk_members(request, group_id: int):
    group = _group(request, group_id)
    may_act = _may_act(request.user, group)
    if not may_act and not access.sees_all(request.user):
        raise PermissionDenied(_("You may not handle risk members in this group."))
    window_days = settings_get().risk_repeat_days
    members = risk_selectors.group_risk_members(group=group, window_days=window_days)
    for row in members:
        row["next_step_label"] = _step_label(row["next_step"])
        row["last_step_label"] = _step_label(row["last_step"])
    return render(
        request,
        "communities/risk/list.html",
        _ctx(
            group,
            window_days,
            members=members,
            record=risk_selectors.group_risk_record(group=group),
            muted=risk_selectors.group_muted_members(group=group),
            may_act=may_act,
            record_limit=risk_selectors.RECORD_ROWS,
        ),
    )


def _error_field(form: RiskActionForm, exc: ApplicationError) -> str | None:
    if not isinstance(exc.details, dict):
        return None
    return next((f for f in exc.details if f in form.fields), None)


@login_required
@permission_required("communities.add_riskaction", raise_exception=True)
def risk_act(request, group_id: int):
    group = _group(request, group_id)
    if not _may_act(request.user, group):
        raise PermissionDenied(_("You may not handle risk members in this group."))
    window_days = settings_get().risk_repeat_days
    initial = {"customer": request.GET.get("customer", "")[:64], "requested_step": RiskStep.WARN}
    form = RiskActionForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            action = risk_services.risk_action_record(
                group=group,
                customer=data["customer"],
                requested_step=data["requested_step"],
                reason=data["reason"],
                note=data["note"],
                mute_minutes=data["mute_minutes"],
                actor=request.user,
            )
        except ApplicationError as exc:
            form.add_error(_error_field(form, exc), exc.message)
        else:
            done = {"customer": action.customer.external_id, "step": action.get_step_display()}
            if action.step != action.requested_step:
                messages.warning(
                    request,
                    _("%(customer)s: a repeat, so escalated from %(asked)s to %(step)s.")
                    % {**done, "asked": action.get_requested_step_display()},
                )
            else:
                messages.success(request, _("%(customer)s: %(step)s recorded.") % done)
            return redirect("communities:group-risk", group_id=group.pk)
    return render(
        request,
        "communities/risk/form.html",
        _ctx(group, window_days, form=form, member=_member_preview(group, initial["customer"], window_days)),
    )


def _member_preview(group: CommunityGroup, external_id: str, window_days: int) -> dict | None:
    """The member named in ``?customer=``: their record in the group and the least step
    the next action applies, so the operator knows before posting."""
    if not external_id:
        return None
    try:
        customer = users_selectors.customer_ref(external_id=external_id)
    except NotFound:
        return None
    floor = risk_selectors.risk_floor_step(group=group, customer=customer, window_days=window_days)
    return {
        "customer": customer,
        "floor": _step_label(floor),
        "floor_is_mute": floor == RiskStep.MUTE,
        "actions": list(risk_selectors.risk_actions_of(group=group, customer=customer)[:10]),
        "steps": RISK_STEPS,
    }

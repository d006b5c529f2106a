"""Operator pages for keyword alerts: the alerts of the groups the operator may see
(filtered by status, severity, group), one alert with its message, incident and ticket
(acknowledge; dismiss as a false positive with the reason), and the rules' noise (hits
against dismissals in the operator's groups).

Seeing needs ``communities.view_alert`` and the group visible (an alert or a group of
another manager's is 404, as everywhere in communities); acknowledging and dismissing
need ``communities.change_alert`` and the group right ``handle_alerts`` (403 without it).
The views call one selector or service each; a refusal is shown and nothing is written."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core.errors import ApplicationError, NotFound

from . import access
from .forms_alerts import AlertFilterForm, DismissForm
from .selectors import alerts as selectors
from .services import alerts as services


def _ctx(**extra) -> dict:
    return {"display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE, **extra}


def _alert_or_404(request, alert_id: int):
    try:
        return selectors.alert_get(viewer=request.user, alert_id=alert_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


@login_required
@permission_required("communities.view_alert", raise_exception=True)
def alert_list(request):
    groups = list(access.groups_visible(request.user))
    form = AlertFilterForm(request.GET or None, groups=groups)
    filters = form.filters()
    if request.GET.get("group") and "group" not in filters:
        # A group id that is not among the visible ones: not found, never "forbidden".
        raise Http404(_("No community group %(id)s.") % {"id": request.GET["group"]})
    alerts = list(selectors.alert_list(viewer=request.user, filters=filters)[: selectors.PAGE_SIZE])
    return render(
        request,
        "communities/alerts/list.html",
        _ctx(form=form, alerts=alerts, page_size=selectors.PAGE_SIZE, dismiss_form=DismissForm()),
    )


@login_required
@permission_required("communities.view_alert", raise_exception=True)
def alert_detail(request, alert_id: int, dismiss_form=None):
    alert = _alert_or_404(request, alert_id)
    can_handle = request.user.has_perm("communities.change_alert") and access.HANDLE_ALERTS in access.rights_of(
        request.user, alert.group
    )
    return render(
        request,
        "communities/alerts/detail.html",
        _ctx(alert=alert, can_handle=can_handle, dismiss_form=dismiss_form or DismissForm()),
    )


@login_required
@require_POST
@permission_required("communities.change_alert", raise_exception=True)
def alert_acknowledge(request, alert_id: int):
    alert = _alert_or_404(request, alert_id)
    try:
        services.alert_acknowledge(alert=alert, actor=request.user)
    except ApplicationError as exc:
        if exc.status_code == 403:
            raise PermissionDenied(exc.message) from exc
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Alert acknowledged."))
    return redirect("communities:alert", alert_id=alert.pk)


@login_required
@require_POST
@permission_required("communities.change_alert", raise_exception=True)
def alert_dismiss(request, alert_id: int):
    alert = _alert_or_404(request, alert_id)
    form = DismissForm(request.POST)
    if form.is_valid():
        try:
            services.alert_dismiss(alert=alert, reason=form.cleaned_data["reason"], actor=request.user)
        except ApplicationError as exc:
            if exc.status_code == 403:
                raise PermissionDenied(exc.message) from exc
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("Alert dismissed as a false positive."))
            return redirect("communities:alert", alert_id=alert.pk)
    response = alert_detail(request, alert_id, dismiss_form=form)
    response.status_code = 400
    return response


@login_required
@permission_required("communities.view_alert", raise_exception=True)
def rule_noise(request):
    return render(
        request,
        "communities/alerts/rules.html",
        _ctx(
            rows=selectors.rule_noise(viewer=request.user),
            sees_counters=request.user.has_perm("communities.view_keywordrule"),
        ),
    )

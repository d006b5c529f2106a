"""Operator pages for points: a manual adjustment with a required reason, the
invite and check-in leaderboards, and the rewards catalogue (积分商城).

Writes go through ``incentives.services.points_post``; this module validates,
checks permissions and renders."""

from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ApplicationError, NotFound
from core.timezones import operator_day_bounds
from users import selectors as users_selectors

from . import selectors, services
from .forms import LeaderboardPeriodForm, PointsAdjustForm
from .models import EntryKind, EntrySource

LEADERBOARD_SIZE = 20


def _customer_or_404(external_id: str):
    try:
        return users_selectors.customer_get(external_id=external_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _error_message(exc: ApplicationError) -> str:
    """The service speaks English to API clients; operators get the message in their language."""
    if exc.code == "insufficient_points":
        return _("Not enough points: the balance (%(balance)s) would go below zero.") % {
            "balance": exc.details.get("balance", "?"),
        }
    if exc.code == "idempotency_key_reused":
        return _("This form was already submitted with other values. Reload the page to make a new adjustment.")
    if exc.code == "reason_required":
        return _("A reason is required.")
    return exc.message


@login_required
@permission_required("incentives.adjust_points", raise_exception=True)
def points_adjust(request, external_id):
    customer = _customer_or_404(external_id)
    if request.method == "POST":
        form = PointsAdjustForm(request.POST)
        if form.is_valid():
            try:
                posted = services.points_post(
                    customer=customer,
                    kind=EntryKind.ADJUST,
                    amount=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"],
                    idempotency_key=form.idempotency_key(),
                    source=EntrySource.OPERATOR,
                    operator=request.user,
                )
            except ApplicationError as exc:
                form.add_error(None, _error_message(exc))
            else:
                if posted.replayed:
                    messages.info(request, _("This adjustment was already recorded; nothing changed."))
                else:
                    messages.success(
                        request,
                        _("Adjusted %(amount)+d points. New balance: %(balance)d.")
                        % {
                            "amount": posted.entry.amount,
                            "balance": posted.entry.balance_after,
                        },
                    )
                return redirect("users:detail", external_id=customer.external_id)
    else:
        form = PointsAdjustForm()
    return render(
        request,
        "incentives/points_adjust.html",
        {
            "customer": customer,
            "form": form,
            "summary": selectors.points_summary(customer=customer),
            "display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE,
        },
    )


def _reward_state(reward, now: datetime) -> str:
    if not reward.is_active:
        return "inactive"
    if reward.valid_from and reward.valid_from > now:
        return "upcoming"
    if reward.valid_until and reward.valid_until <= now:
        return "ended"
    if reward.stock is not None and reward.stock <= 0:
        return "out_of_stock"
    return "available"


@login_required
@permission_required("incentives.view_pointsentry", raise_exception=True)
def points_home(request):
    tz = ZoneInfo(settings.OPS_DEFAULT_CUSTOMER_TIMEZONE)
    now = timezone.now()
    today = timezone.localdate(now, timezone=tz)
    bound = any(request.GET.get(k) is not None for k in ("start", "end"))
    form = LeaderboardPeriodForm(request.GET if bound else None, today=today)
    boards = None
    period = None
    if not bound or form.is_valid():
        start, end = (form.cleaned_data["start"], form.cleaned_data["end"]) if bound else form.default_period(today)
        # Whole local days, the end day included: [start 00:00, end+1 00:00).
        start_at, end_at = operator_day_bounds(start)[0], operator_day_bounds(end)[1]
        period = {"start": start, "end": end}
        boards = {
            "invites": selectors.leaderboard(kind="invites", start=start_at, end=end_at, limit=LEADERBOARD_SIZE),
            "checkins": selectors.leaderboard(kind="checkins", start=start_at, end=end_at, limit=LEADERBOARD_SIZE),
        }
    rewards = [{"reward": r, "state": _reward_state(r, now)} for r in selectors.reward_list(now=now)]
    return render(
        request,
        "incentives/points_home.html",
        {
            "form": form,
            "period": period,
            "boards": boards,
            "rewards": rewards,
            "display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE,
        },
    )

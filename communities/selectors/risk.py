"""Reads of the risk-member record: a group's record and who is muted now, the
escalation each member faces next, and the 360 page's record of some customers.

The escalation rule (``communities.services.risk``): a member's actions in the group
within ``risk_repeat_days`` set a floor, the step after the highest of them."""

from datetime import datetime, timedelta

from django.db.models import Case, IntegerField, Max, QuerySet, Value, When, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from users.models import Customer

from .. import access
from ..models import RISK_STEPS, CommunityGroup, Membership, RiskAction, RiskStep

RECORD_ROWS = 200

# A step's place on the ladder, in SQL, so the highest recent step is one aggregate.
_RANK = Case(
    *(When(step=step, then=Value(rank)) for rank, step in enumerate(RISK_STEPS)),
    output_field=IntegerField(),
)


def _next_after(rank: int | None) -> str | None:
    if rank is None:
        return None
    return RISK_STEPS[min(rank + 1, len(RISK_STEPS) - 1)]


def _window_start(window_days: int, now: datetime | None) -> datetime:
    return (now or timezone.now()) - timedelta(days=window_days)


def risk_floor_step(
    *, group: CommunityGroup, customer: Customer, window_days: int, now: datetime | None = None
) -> str | None:
    """The least step a new action on this member applies: the step after the highest
    one recorded in the group within the window; None when there is none (first time)."""
    rank = (
        RiskAction.objects.filter(group=group, customer=customer, at__gte=_window_start(window_days, now))
        .aggregate(top=Max(_RANK))
        .get("top")
    )
    return _next_after(rank)


def risk_floor_steps(
    *, group: CommunityGroup, customer_ids, window_days: int, now: datetime | None = None
) -> dict[int, str]:
    """``risk_floor_step`` for many members in one query: ``{customer_id: step}`` for
    those with a recent action (the others start from what is asked)."""
    rows = (
        RiskAction.objects.filter(group=group, customer_id__in=customer_ids, at__gte=_window_start(window_days, now))
        .values("customer_id")
        .annotate(top=Max(_RANK))
        .values_list("customer_id", "top")
    )
    return {customer_id: _next_after(top) for customer_id, top in rows}


def group_risk_record(*, group: CommunityGroup, limit: int = RECORD_ROWS) -> list[RiskAction]:
    """The group's risk actions, newest first, with customer and operator in the same query."""
    return list(
        RiskAction.objects.filter(group=group).select_related("customer", "actor").order_by("-at", "-id")[:limit]
    )


def group_muted_members(*, group: CommunityGroup, now: datetime | None = None) -> list[dict]:
    """Members of the group (open spans) muted now: ``{"customer", "mute_until"}``,
    the latest end when muted more than once, the soonest to end first."""
    now = now or timezone.now()
    rows = list(
        RiskAction.objects.filter(group=group, step=RiskStep.MUTE, mute_until__gt=now)
        .filter(
            customer_id__in=Membership.objects.filter(group=group, left_at__isnull=True).values("customer_id"),
        )
        .values("customer_id")
        .annotate(until=Max("mute_until"))
        .order_by("until", "customer_id")
    )
    customers = Customer.objects.in_bulk([r["customer_id"] for r in rows])
    return [{"customer": customers[r["customer_id"]], "mute_until": r["until"]} for r in rows]


def customer_risk_actions(*, customer_ids, viewer, limit_per_customer: int = 50) -> dict[int, list[RiskAction]]:
    """The risk record of each customer, newest first, for the 360 page: ``{customer_id:
    [RiskAction, ...]}`` (group and operator loaded), at most ``limit_per_customer`` each,
    in one query whatever the number of customers. Only the groups ``viewer`` may see
    count: a second manager learns nothing of the first one's groups here either."""
    if not (viewer.has_perm("communities.view_riskaction") and viewer.has_perm("communities.view_communitygroup")):
        return {}
    actions = RiskAction.objects.filter(customer_id__in=list(customer_ids))
    visible = access.group_visible_q(viewer)
    if visible is not None:
        actions = actions.filter(group__in=CommunityGroup.objects.filter(visible))
    ranked = (
        actions.annotate(n=Window(RowNumber(), partition_by=["customer_id"], order_by=["-at", "-id"]))
        .filter(n__lte=limit_per_customer)
        .select_related("group", "actor")
        .order_by("customer_id", "-at", "-id")
    )
    out: dict[int, list[RiskAction]] = {}
    for action in ranked:
        out.setdefault(action.customer_id, []).append(action)
    return out


def risk_actions_of(*, group: CommunityGroup, customer: Customer) -> QuerySet[RiskAction]:
    """One member's actions in the group, newest first."""
    return RiskAction.objects.filter(group=group, customer=customer).select_related("actor").order_by("-at", "-id")

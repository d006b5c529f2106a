"""Reads of the risk-member record: a group's record and who is muted now, the
escalation each member faces next, and the 360 page's record of some customers.

The escalation rule (``communities.services.risk``): a member's actions in the group
within ``risk_repeat_days`` set a floor, the step after the highest of them."""

from datetime import datetime, timedelta

from django.db.models import (
    Case,
    Count,
    Exists,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
    Window,
)
from django.db.models.functions import RowNumber
from django.utils import timezone

from users.models import Customer

from .. import access
from ..models import RISK_STEPS, CommunityGroup, GroupStaff, Membership, RiskAction, RiskStep

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


def group_risk_members(
    *, group: CommunityGroup, window_days: int, now: datetime | None = None, limit: int = RECORD_ROWS
) -> list[dict]:
    """The group's risk members, one row each, the latest handled first, in one query:
    ``customer``, ``actions`` (all time), ``recent`` (within the window), ``last_at``,
    ``last_step``, ``next_step`` (the escalation floor; None when a new action applies
    what is asked), ``muted_until`` (a mute running now) and ``in_group`` (an open span)."""
    now = now or timezone.now()
    recent = Q(at__gte=_window_start(window_days, now))
    latest = RiskAction.objects.filter(group=group, customer_id=OuterRef("customer_id")).order_by("-at", "-id")
    rows = list(
        RiskAction.objects.filter(group=group)
        .values("customer_id")
        .annotate(
            actions=Count("id"),
            recent=Count("id", filter=recent),
            top_recent=Max(_RANK, filter=recent),
            last_at=Max("at"),
            muted_until=Max("mute_until", filter=Q(step=RiskStep.MUTE, mute_until__gt=now)),
            last_step=Subquery(latest.values("step")[:1]),
            in_group=Exists(
                Membership.objects.filter(group=group, customer_id=OuterRef("customer_id"), left_at__isnull=True)
            ),
        )
        .order_by("-last_at", "customer_id")[:limit]
    )
    customers = Customer.objects.only("id", "external_id", "nickname").in_bulk([r["customer_id"] for r in rows])
    return [
        {
            "customer": customers[r["customer_id"]],
            "actions": r["actions"],
            "recent": r["recent"],
            "last_at": r["last_at"],
            "last_step": r["last_step"],
            "next_step": _next_after(r["top_recent"]),
            "muted_until": r["muted_until"] if r["in_group"] else None,
            "in_group": r["in_group"],
        }
        for r in rows
    ]


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


def _groups_handling_risk(user) -> QuerySet[CommunityGroup]:
    """The groups where ``user`` holds the ``handle_risk`` right, in SQL (the rule of
    ``access.rights_of``: owner, or staff with "can manage" or "can handle risk members").
    The risk record is theirs to read, as on the group's risk page."""
    staff = GroupStaff.objects.filter(user=user).filter(Q(can_manage=True) | Q(can_handle_risk=True))
    return CommunityGroup.objects.filter(Q(owner=user) | Q(pk__in=staff.values("group_id")))


def customer_risk_actions(*, customer_ids, viewer, limit_per_customer: int = 50) -> dict[int, list[RiskAction]]:
    """The risk record of each customer, newest first, for the 360 page: ``{customer_id:
    [RiskAction, ...]}`` (group and operator loaded), at most ``limit_per_customer`` each,
    in one query whatever the number of customers. Only the groups ``viewer`` may see
    count (every group for those who read every group, otherwise those where they may
    handle risk members, as the group's risk page): a second manager learns nothing of
    the first one's groups here either."""
    if not (viewer.has_perm("communities.view_riskaction") and viewer.has_perm("communities.view_communitygroup")):
        return {}
    actions = RiskAction.objects.filter(customer_id__in=list(customer_ids))
    if not access.sees_all(viewer):
        actions = actions.filter(group__in=_groups_handling_risk(viewer))
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

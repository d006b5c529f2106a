"""Levels from growth value (with the downgrade grace) and badges awarded once."""

from collections import defaultdict
from datetime import datetime

from django.db.models import Count, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from users.models import Customer, Event

from .. import rules
from ..models import Badge, BadgeKind, CustomerBadge, Level, PointsAccount, PointsEntry
from .ledger import policy_get


def levels_update(*, customer_ids=None, now: datetime | None = None, recompute_growth: bool = False) -> int:
    """Moves accounts to the level their growth value earns, with the downgrade grace.

    With ``recompute_growth`` the growth value is first recomputed set-based as the
    sum of growth earned within the policy's window (the nightly job does this)."""
    now = now or timezone.now()
    policy = policy_get()
    steps = [rules.LevelStep(lv.pk, lv.threshold) for lv in Level.objects.all()]
    accounts = PointsAccount.objects.all()
    if customer_ids is not None:
        accounts = accounts.filter(customer_id__in=list(customer_ids))
    if recompute_growth:
        since = now - timezone.timedelta(days=policy.growth_window_days)
        growth = (PointsEntry.objects.filter(customer_id=OuterRef("customer_id"), created_at__gt=since)
                  .order_by().values("customer_id").annotate(g=Sum("growth")).values("g"))
        accounts.update(growth_value=Coalesce(Subquery(growth), 0))
    if not steps:
        return 0
    by_id = {s.id: s for s in steps}
    changed = []
    # Accounts are few per event batch; the nightly pass walks them in chunks of ids.
    for account in accounts.only("customer_id", "growth_value", "level_id", "level_below_since").iterator(chunk_size=2000):
        level, below = rules.next_level(
            current=by_id.get(account.level_id), growth=account.growth_value, below_since=account.level_below_since,
            now=now, levels=steps, grace_days=policy.level_grace_days, margin_pct=policy.level_downgrade_margin_pct,
        )
        new_id = level.id if level else None
        if new_id != account.level_id or below != account.level_below_since:
            account.level_id, account.level_below_since = new_id, below
            changed.append(account)
    PointsAccount.objects.bulk_update(changed, ["level", "level_below_since"], batch_size=1000)
    return len(changed)


def badges_award(*, customer_ids, now: datetime | None = None) -> int:
    """Awards each active badge once to the customers who now meet it."""
    now = now or timezone.now()
    customer_ids = set(customer_ids)
    badges = list(Badge.objects.filter(is_active=True))
    if not customer_ids or not badges:
        return 0
    awards = []
    counts = {
        BadgeKind.CONTENT_COUNT: dict(Event.objects.filter(customer_id__in=customer_ids, type="content_accepted")
                                      .values("customer_id").annotate(n=Count("id")).values_list("customer_id", "n")),
        BadgeKind.INVITE_COUNT: dict(Customer.objects.filter(referred_by_id__in=customer_ids, events__type="invite_accepted")
                                     .values("referred_by_id").annotate(n=Count("id", distinct=True))
                                     .values_list("referred_by_id", "n")),
    }
    if any(b.kind == BadgeKind.CHECKIN_STREAK for b in badges):
        days: dict[int, list] = defaultdict(list)
        for cid, at, tz in Event.objects.filter(customer_id__in=customer_ids, type="checkin").values_list(
            "customer_id", "occurred_at", "customer__timezone"
        ):
            days[cid].append(rules.local_date(at, tz))
        counts[BadgeKind.CHECKIN_STREAK] = {cid: max(rules.streak_lengths(d).values()) for cid, d in days.items()}
    for badge in badges:
        for cid, value in counts.get(badge.kind, {}).items():
            if value >= badge.threshold:
                awards.append(CustomerBadge(customer_id=cid, badge=badge, awarded_at=now))
    CustomerBadge.objects.bulk_create(awards, ignore_conflicts=True)
    return len(awards)

"""Levels from growth value (with the downgrade grace) and badges awarded once."""

from datetime import datetime

from django.db import connection, transaction
from django.db.models import Count, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.sql import sql_datetime
from users.models import Customer, Event

from ..models import Badge, BadgeKind, CustomerBadge, Level, PointsAccount, PointsEntry
from ..selectors import checkin_streak_longest, policy_get

GROWTH_RECOMPUTE_CHUNK = 5000


def growth_recompute(*, accounts, since: datetime) -> None:
    """Sets each account's growth value to the growth its entries earned after ``since``,
    a chunk of accounts at a time, without losing a concurrent post's growth.

    A post moves ``growth_value`` under the account's row lock (``accounts_lock``). One
    plain ``UPDATE … SET growth_value = (SELECT SUM … )`` would read the ledger in the
    snapshot its statement started with: when it meets a row a post holds, it waits, then
    writes a sum that misses the entry that post just committed (PostgreSQL rechecks the
    row, not the subquery). So each chunk first takes the accounts' locks, in id order
    like every other locker (no deadlock with a batch), and only then sums the ledger in
    a new statement — READ COMMITTED gives it a snapshot that holds every post that
    finished before the locks were granted, and later posts wait for this commit and
    add to the recomputed value. On SQLite writers are serialised already."""
    chunk, after = GROWTH_RECOMPUTE_CHUNK, None
    while True:
        with transaction.atomic():
            page = accounts.order_by("customer_id")
            if after is not None:
                page = page.filter(customer_id__gt=after)
            ids = list(page.select_for_update().values_list("customer_id", flat=True)[:chunk])
            if not ids:
                return
            growth = (
                PointsEntry.objects.filter(customer_id=OuterRef("customer_id"), created_at__gt=since)
                .order_by()
                .values("customer_id")
                .annotate(g=Sum("growth"))
                .values("g")
            )
            PointsAccount.objects.filter(customer_id__in=ids).update(growth_value=Coalesce(Subquery(growth), 0))
        if len(ids) < chunk:
            return
        after = ids[-1]


def levels_update(*, customer_ids=None, now: datetime | None = None, recompute_growth: bool = False) -> int:
    """Moves accounts to the level their growth value earns, with the downgrade grace,
    in one ``UPDATE`` (``rules.next_level`` is the same decision for one account, and a
    test holds the two to each other).

    With ``recompute_growth`` the growth value is first recomputed set-based as the
    sum of growth earned within the policy's window (the nightly job does this).
    Returns the number of accounts whose level or grace mark changed."""
    now = now or timezone.now()
    policy = policy_get()
    accounts = PointsAccount.objects.all()
    if customer_ids is not None:
        accounts = accounts.filter(customer_id__in=list(customer_ids))
    if recompute_growth:
        growth_recompute(accounts=accounts, since=now - timezone.timedelta(days=policy.growth_window_days))
    if customer_ids is not None and not customer_ids:
        return 0
    if customer_ids is None:
        ids_sql, ids = "", []
    else:
        in_sql, ids = accounts.values("customer_id").query.sql_with_params()
        ids_sql = f"WHERE a.customer_id IN ({in_sql})"
    level, account = Level._meta.db_table, PointsAccount._meta.db_table
    target = f"(SELECT {{col}} FROM {level} l WHERE l.threshold <= a.growth_value ORDER BY l.threshold DESC LIMIT 1)"
    # The cases of rules.next_level, in its order: upgrade or first level; not clearly
    # below the current threshold; clearly below, grace starts; grace over; in grace.
    upgrade = "cur_id IS NULL OR cur_th IS NULL OR (target_id IS NOT NULL AND target_th >= cur_th)"
    not_clearly_below = "g * 100 >= cur_th * (100 - %s)"
    # One UPDATE … FROM (subquery), no CTE: SQLite reports no rowcount for a WITH statement.
    sql = f"""
        UPDATE {account} SET level_id = d.new_id, level_below_since = d.new_below
        FROM (
            SELECT customer_id,
                   CASE WHEN {upgrade} THEN target_id WHEN {not_clearly_below} THEN cur_id
                        WHEN below IS NULL THEN cur_id
                        WHEN below <= %s THEN target_id ELSE cur_id END AS new_id,
                   CASE WHEN {upgrade} THEN NULL WHEN {not_clearly_below} THEN NULL WHEN below IS NULL THEN %s
                        WHEN below <= %s THEN NULL ELSE below END AS new_below
            FROM (
                SELECT a.customer_id, a.growth_value AS g, a.level_id AS cur_id, cl.threshold AS cur_th,
                       a.level_below_since AS below, {target.format(col="l.id")} AS target_id,
                       {target.format(col="l.threshold")} AS target_th
                FROM {account} a LEFT JOIN {level} cl ON cl.id = a.level_id
                {ids_sql}
            ) now_state
        ) d
        WHERE {account}.customer_id = d.customer_id
          AND ({account}.level_id IS DISTINCT FROM d.new_id OR {account}.level_below_since IS DISTINCT FROM d.new_below)
    """
    grace_over = sql_datetime(now - timezone.timedelta(days=policy.level_grace_days))
    margin = policy.level_downgrade_margin_pct
    with connection.cursor() as cur:
        cur.execute(sql, [margin, grace_over, margin, sql_datetime(now), grace_over, *ids])
        return cur.rowcount


def badges_award(*, customer_ids, now: datetime | None = None) -> int:
    """Awards each active badge once to the customers who now meet it."""
    now = now or timezone.now()
    customer_ids = set(customer_ids)
    badges = list(Badge.objects.filter(is_active=True))
    if not customer_ids or not badges:
        return 0
    awards = []
    counts = {
        BadgeKind.CONTENT_COUNT: dict(
            Event.objects.filter(customer_id__in=customer_ids, type="content_accepted")
            .values("customer_id")
            .annotate(n=Count("id"))
            .values_list("customer_id", "n")
        ),
        BadgeKind.INVITE_COUNT: dict(
            Customer.objects.filter(referred_by_id__in=customer_ids, events__type="invite_accepted")
            .values("referred_by_id")
            .annotate(n=Count("id", distinct=True))
            .values_list("referred_by_id", "n")
        ),
    }
    if any(b.kind == BadgeKind.CHECKIN_STREAK for b in badges):
        counts[BadgeKind.CHECKIN_STREAK] = checkin_streak_longest(customer_ids=customer_ids)
    for badge in badges:
        for cid, value in counts.get(badge.kind, {}).items():
            if value >= badge.threshold:
                awards.append(CustomerBadge(customer_id=cid, badge=badge, awarded_at=now))
    CustomerBadge.objects.bulk_create(awards, ignore_conflicts=True)
    return len(awards)

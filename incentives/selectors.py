"""Reads for points, levels, badges, rewards, check-in streaks and leaderboards."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import connection
from django.db.models import Count, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Greatest, TruncDate
from django.utils import timezone

from users.models import Customer, Event

from .models import CustomerBadge, IncentivePolicy, Level, PointsAccount, PointsEntry, Redemption, Reward


def policy_get() -> IncentivePolicy:
    """The incentive policy (expiry, reminder window), or its defaults before one is saved."""
    policy = IncentivePolicy.objects.order_by("pk").first()
    return policy or IncentivePolicy()


def _expiry_sums(at: datetime, soon: datetime):
    return {
        "lapsed_now": Sum("amount", filter=Q(expires_at__lte=at), default=0),
        "lapsed_soon": Sum("amount", filter=Q(expires_at__lte=soon), default=0),
        "debits": Sum("amount", filter=Q(amount__lt=0, expires_at__isnull=True), default=0),
    }


def _due_now(row) -> int:
    return max(0, row["lapsed_now"] + row["debits"])


def _expiring(row) -> int:
    return max(0, row["lapsed_soon"] + row["debits"]) - _due_now(row)


def points_summary(*, customer: Customer, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    soon = now + timedelta(days=policy_get().reminder_days)
    account = PointsAccount.objects.filter(customer=customer).first()
    row = PointsEntry.objects.filter(customer=customer).aggregate(**_expiry_sums(now, soon))
    return {
        # Spendable now: points that lapsed since the nightly job last ran are not (a
        # spend expires them first), so the balance shown must not count them either.
        "balance": max(0, account.balance - _due_now(row)) if account else 0,
        "expiring_soon": _expiring(row),
        "expiring_before": soon,
        "growth_value": account.growth_value if account else 0,
    }


def customers_with_points_expiring(*, within_days: int | None = None, now: datetime | None = None) -> QuerySet:
    """``[{"customer_id", "expiring"}]`` for everyone with points lapsing within the window
    (one GROUP BY over the ledger) — the audience of the expiry reminder."""
    now = now or timezone.now()
    soon = now + timedelta(days=within_days if within_days is not None else policy_get().reminder_days)
    return (
        PointsEntry.objects.values("customer_id")
        .annotate(**_expiry_sums(now, soon))
        .annotate(
            expiring=Greatest(F("lapsed_soon") + F("debits"), Value(0))
            - Greatest(F("lapsed_now") + F("debits"), Value(0))
        )
        .filter(expiring__gt=0)
        .order_by("customer_id")
        .values("customer_id", "expiring")
    )


def customers_with_entries_since(*, since: datetime) -> list[int]:
    """Customers whose points moved at or after ``since`` (an index range on created_at)."""
    return list(
        PointsEntry.objects.filter(created_at__gte=since).values_list("customer_id", flat=True).distinct().order_by()
    )


def customer_level(*, customer: Customer) -> dict | None:
    account = PointsAccount.objects.select_related("level").filter(customer=customer).first()
    if account is None or account.level is None:
        return None
    following = Level.objects.filter(threshold__gt=account.level.threshold).order_by("threshold").first()
    return {
        "name": account.level.name,
        "threshold": account.level.threshold,
        "benefits": account.level.benefits,
        "growth_value": account.growth_value,
        "next": {"name": following.name, "threshold": following.threshold} if following else None,
        "downgrade_pending_since": account.level_below_since,
    }


def customer_badges(*, customer: Customer) -> list[dict]:
    return [
        {"code": b.badge.code, "name": b.badge.name, "awarded_at": b.awarded_at}
        for b in CustomerBadge.objects.filter(customer=customer).select_related("badge").order_by("awarded_at")
    ]


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        return ZoneInfo(settings.OPS_DEFAULT_CUSTOMER_TIMEZONE)


@dataclass(frozen=True)
class Streak:
    """A run of consecutive check-in days, ``start`` to ``end`` inclusive."""

    start: date
    end: date

    @property
    def length(self) -> int:
        return (self.end - self.start).days + 1

    def length_on(self, day: date) -> int:
        """How many consecutive days the streak has reached on ``day`` (within it)."""
        return (day - self.start).days + 1


def _checkin_streaks_sql(customer_ids: list[int], ending_on_or_after: date | None) -> tuple[str, list]:
    """The gaps-and-islands query: one row per streak (customer_id, first_day, last_day, days).

    A check-in counts on its day in the customer's own timezone, like the leaderboard
    (a ``TruncDate`` per zone, unioned; several check-ins on one day count once). Among
    a customer's distinct days in order, ``day - row_number`` is constant exactly along a
    run of consecutive days, so grouping by it yields the streaks."""
    checkins = Event.objects.filter(customer_id__in=customer_ids, type="checkin")
    zones = list(checkins.values_list("customer__timezone", flat=True).distinct().order_by())
    parts = [
        checkins.filter(customer__timezone=tz)
        .annotate(day=TruncDate("occurred_at", tzinfo=_zone(tz)))
        .values("customer_id", "day")
        .distinct()
        .order_by()
        for tz in zones
    ]
    if not parts:
        return "", []
    days = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
    days_sql, params = days.query.get_compiler(using=days.db).as_sql()
    # Both dialects: a date minus n days (PostgreSQL), a Julian day number minus n (SQLite).
    island = "t.day - CAST(t.rn AS integer)" if connection.vendor == "postgresql" else "julianday(t.day) - t.rn"
    having = ""
    if ending_on_or_after is not None:
        having = "HAVING MAX(t.day) >= %s"
        params = [*params, connection.ops.adapt_datefield_value(ending_on_or_after)]
    sql = f"""
        SELECT t.customer_id, MIN(t.day) AS first_day, MAX(t.day) AS last_day, COUNT(*) AS days
        FROM (SELECT d.customer_id, d.day, ROW_NUMBER() OVER (PARTITION BY d.customer_id ORDER BY d.day) AS rn
              FROM ({days_sql}) d) t
        GROUP BY t.customer_id, {island}
        {having}
    """
    return sql, list(params)


def _as_date(value) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def checkin_streaks(*, customer_ids: Iterable[int], ending_on_or_after: date | None = None) -> dict[int, list[Streak]]:
    """Each customer's check-in streaks, oldest first, computed in the database (two
    queries whatever the number of check-ins). ``ending_on_or_after`` keeps only the
    streaks still running on or after that day (the ones a new check-in can extend)."""
    sql, params = _checkin_streaks_sql(sorted(set(customer_ids)), ending_on_or_after)
    if not sql:
        return {}
    streaks: dict[int, list[Streak]] = defaultdict(list)
    with connection.cursor() as cur:
        cur.execute(f"SELECT customer_id, first_day, last_day FROM ({sql}) s ORDER BY customer_id, first_day", params)
        for cid, first, last in cur.fetchall():
            streaks[cid].append(Streak(_as_date(first), _as_date(last)))
    return dict(streaks)


def checkin_streak_longest(*, customer_ids: Iterable[int]) -> dict[int, int]:
    """Each customer's longest check-in streak in days (customers who never checked in
    are absent), aggregated in the database from the same gaps-and-islands query."""
    sql, params = _checkin_streaks_sql(sorted(set(customer_ids)), None)
    if not sql:
        return {}
    with connection.cursor() as cur:
        cur.execute(f"SELECT customer_id, MAX(days) FROM ({sql}) s GROUP BY customer_id", params)
        return dict(cur.fetchall())


def customer_entries(*, customer: Customer, limit: int = 50) -> QuerySet[PointsEntry]:
    return PointsEntry.objects.filter(customer=customer).select_related("operator", "rule").order_by("-id")[:limit]


def reward_list(*, now: datetime | None = None, available_only: bool = False) -> QuerySet[Reward]:
    now = now or timezone.now()
    qs = Reward.objects.order_by("points_price")
    if available_only:
        qs = qs.filter(is_active=True).filter(
            Q(valid_from__isnull=True) | Q(valid_from__lte=now), Q(valid_until__isnull=True) | Q(valid_until__gt=now)
        )
        qs = qs.filter(Q(stock__isnull=True) | Q(stock__gt=0))
    return qs


def redemption_get(*, redemption_id: int) -> Redemption | None:
    return Redemption.objects.select_related("customer", "reward", "spend_entry").filter(pk=redemption_id).first()


def leaderboard(*, kind: str, start: datetime, end: datetime, limit: int = 20) -> list[dict]:
    """Top customers by accepted invites (invitees who sent ``invite_accepted`` in the
    period, credited to their referrer) or by check-in days in the period, each day in
    the customer's own timezone (several check-ins on one local day count once)."""
    if kind == "invites":
        rows = (
            Event.objects.filter(
                type="invite_accepted", occurred_at__gte=start, occurred_at__lt=end, customer__referred_by__isnull=False
            )
            .values("customer__referred_by")
            .annotate(score=Count("customer", distinct=True))
            .order_by("-score", "customer__referred_by")[:limit]
        )
        top = [(r["customer__referred_by"], r["score"]) for r in rows]
    elif kind == "checkins":
        checkins = Event.objects.filter(type="checkin", occurred_at__gte=start, occurred_at__lt=end)
        top = []
        # One GROUP BY per timezone among the period's check-ins (a handful): each
        # customer has one zone, so the per-zone tops merge into the overall top.
        for tz in checkins.values_list("customer__timezone", flat=True).distinct().order_by():
            rows = (
                checkins.filter(customer__timezone=tz)
                .values("customer")
                .annotate(score=Count(TruncDate("occurred_at", tzinfo=_zone(tz)), distinct=True))
                .order_by("-score", "customer")[:limit]
            )
            top += [(r["customer"], r["score"]) for r in rows]
        top = sorted(top, key=lambda row: (-row[1], row[0]))[:limit]
    else:
        raise ValueError(kind)
    ids, scores = [cid for cid, _ in top], [score for _, score in top]
    names = {c.pk: c for c in Customer.objects.filter(pk__in=ids).only("external_id", "nickname", "name")}
    return [
        {
            "rank": i + 1,
            "customer": names[cid].external_id,
            "nickname": names[cid].nickname or names[cid].name,
            "score": score,
        }
        for i, (cid, score) in enumerate(zip(ids, scores, strict=True))
    ]


def level_names() -> list[str]:
    """The levels' names, lowest threshold first (the segment builder offers them)."""
    return list(Level.objects.order_by("threshold").values_list("name", flat=True))

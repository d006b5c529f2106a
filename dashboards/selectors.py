"""Reads for the dashboard home. Every number is one aggregate query in the
database; nothing loops over customers, orders or events in Python.

Windows are rolling and end at ``now`` (inclusive): "last 7 days" means
``now - 7 days <= t <= now``. A customer's join time is ``signup_at`` when the
product backend sent one, else the time the record was created here.
"""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, DecimalField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncDate

from core.models import JobRun
from segments import panels as segments_panels
from users.models import Customer, Event, Order, OrderStatus

_MONEY = DecimalField(max_digits=14, decimal_places=2)


def _ratio(numerator, denominator) -> float | None:
    """``None`` (shown as "—") rather than a misleading 0 when there is nothing to divide by."""
    if not denominator:
        return None
    return float(numerator) / float(denominator)


def _customers_joined():
    return Customer.objects.annotate(joined_at=Coalesce("signup_at", "created_at"))


def dashboard_kpis(*, now: datetime) -> dict:
    """The KPI cards: growth, value and activity over rolling windows ending at ``now``."""
    day_ago, week_ago, month_ago = now - timedelta(days=1), now - timedelta(days=7), now - timedelta(days=30)

    customers = _customers_joined().aggregate(
        total=Count("id"),
        new_7d=Count("id", filter=Q(joined_at__gte=week_ago, joined_at__lte=now)),
        new_30d=Count("id", filter=Q(joined_at__gte=month_ago, joined_at__lte=now)),
        buyers=Count("id", filter=Q(paid_orders__gte=1)),
        repeat_buyers=Count("id", filter=Q(paid_orders__gte=2)),
    )
    orders = Order.objects.filter(status=OrderStatus.PAID, occurred_at__gte=month_ago, occurred_at__lte=now).aggregate(
        count=Count("id"),
        revenue=Coalesce(Sum("amount"), Value(Decimal("0")), output_field=_MONEY),
    )
    activity = Event.objects.filter(occurred_at__gte=month_ago, occurred_at__lte=now).aggregate(
        dau=Count("customer_id", distinct=True, filter=Q(occurred_at__gte=day_ago)),
        mau=Count("customer_id", distinct=True),
    )
    aov = orders["revenue"] / orders["count"] if orders["count"] else None
    return {
        "customers_total": customers["total"],
        "customers_new_7d": customers["new_7d"],
        "customers_new_30d": customers["new_30d"],
        "new_by_channel_30d": new_customers_by_channel(since=month_ago, until=now),
        "paid_orders_30d": orders["count"],
        "revenue_30d": orders["revenue"],
        "average_order_value_30d": aov.quantize(Decimal("0.01")) if aov is not None else None,
        "buyers": customers["buyers"],
        "repeat_buyers": customers["repeat_buyers"],
        "repeat_purchase_rate": _ratio(customers["repeat_buyers"], customers["buyers"]),
        "dau": activity["dau"],
        "mau": activity["mau"],
        "stickiness": _ratio(activity["dau"], activity["mau"]),
    }


def new_customers_by_channel(*, since: datetime, until: datetime) -> list[dict]:
    """``[{"channel": "douyin", "count": 12}, ...]``, largest first; ``""`` is "no channel"."""
    rows = (
        _customers_joined()
        .filter(joined_at__gte=since, joined_at__lte=until)
        .values("channel")
        .annotate(count=Count("id"))
        .order_by("-count", "channel")
    )
    return list(rows)


def dashboard_daily_series(*, now: datetime, days: int = 30, tz: str | None = None) -> list[dict]:
    """One row per calendar day (in the team's timezone), oldest first, the last being
    today: ``{"day": date, "new_customers": int, "revenue": Decimal}``. Days with
    nothing are present with zeros so the chart has no gaps."""
    zone = ZoneInfo(tz or settings.OPS_DEFAULT_CUSTOMER_TIMEZONE)
    today = now.astimezone(zone).date()
    first_day = today - timedelta(days=days - 1)
    start = datetime.combine(first_day, datetime.min.time(), tzinfo=zone)

    signups = (
        _customers_joined()
        .filter(joined_at__gte=start, joined_at__lte=now)
        .annotate(day=TruncDate("joined_at", tzinfo=zone))
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    revenue = (
        Order.objects.filter(status=OrderStatus.PAID, occurred_at__gte=start, occurred_at__lte=now)
        .annotate(day=TruncDate("occurred_at", tzinfo=zone))
        .values("day")
        .annotate(total=Sum("amount"))
        .values_list("day", "total")
    )
    new_by_day: dict[date, int] = dict(signups)
    revenue_by_day: dict[date, Decimal] = dict(revenue)
    # A fixed-size walk over calendar days (not over rows) to fill the gaps.
    return [
        {
            "day": day,
            "new_customers": new_by_day.get(day, 0),
            "revenue": revenue_by_day.get(day) or Decimal("0"),
        }
        for day in (first_day + timedelta(days=i) for i in range(days))
    ]


def job_runs_recent(*, limit: int = 10) -> QuerySet[JobRun]:
    return JobRun.objects.order_by("-started_at", "-id")[:limit]


def job_list_recent(*, limit: int = 10) -> list[dict]:
    """The dashboard's "last job runs": the periodic jobs' runs (``core.JobRun``: order
    stats, points expiry, levels, the points backfill…) and the segment recomputes
    (recorded as their ``SegmentRun``, full and incremental), newest first.
    ``{"job", "kind", "run", "status", "badge", "status_label", "started_at", "duration_seconds"}``."""
    rows = [
        {
            "job": run.job,
            "kind": "job",
            "run": run.pk,
            "status": run.status,
            "badge": run.status,
            "status_label": run.get_status_display(),
            "started_at": run.started_at,
            "duration_seconds": run.duration_seconds,
        }
        for run in job_runs_recent(limit=limit)
    ]
    rows += segments_panels.recompute_runs_for_job_list(limit=limit)
    rows.sort(key=lambda r: (r["started_at"], r["kind"] != "job", r["run"]), reverse=True)
    return rows[:limit]

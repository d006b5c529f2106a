"""The queue's reports: the share of tickets that met each SLA target, response and
resolution times (median and p90), and the open backlog by age; and the dashboard's
feedback card. Each report is one set-based query (aggregates, window functions) that
runs the same on PostgreSQL and SQLite; Python only shapes the aggregated rows.

**Periods** are operator days (``core.timezones``): ``start`` and ``end`` are dates,
both included, and a ticket counts in the period it was *created* in. Weeks are ISO
weeks (Monday to Sunday) in the operators' timezone.

**Which tickets.** Duplicates merged into another ticket are left out: their clock was
stopped by the merge, not by work, and the primary ticket already counts.

**Met, breached, pending.** A target is *met* when its clock stopped within the target,
*breached* when the sweep marked it breached or it stopped past the target, and
*pending* while it still runs or is paused within the target. The share met is
``met / (met + breached)``: a target still running has not been decided either way.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import connection
from django.db.models import Avg, Count, DateField, Exists, F, OuterRef, Q
from django.db.models.functions import TruncWeek
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from core.sql import sql_datetime
from core.timezones import operator_day_bounds, operator_timezone

from ..models import (
    OPEN_STATUSES,
    PRIORITY_ORDER,
    Category,
    CsatResponse,
    NpsResponse,
    Priority,
    SlaTarget,
    Team,
    TeamCode,
    Ticket,
)

KINDS = (SlaTarget.Kind.FIRST_RESPONSE, SlaTarget.Kind.RESOLUTION)
GROUPINGS = ("team", "priority", "category", "week")

# A target's outcome, as conditions on the joined ``sla_targets`` row; exclusive.
_BREACHED = Q(sla_targets__state=SlaTarget.State.BREACHED) | Q(sla_targets__breached_at__isnull=False)
_MET = Q(sla_targets__state=SlaTarget.State.MET, sla_targets__breached_at__isnull=True)

#: the backlog's age buckets: (key, label, lower bound in days, upper bound in days or None)
AGE_BUCKETS = (
    ("lt_1d", "< 1 d", 0, 1),
    ("d1_3", "1–3 d", 1, 3),
    ("d3_7", "3–7 d", 3, 7),
    ("d7_30", "7–30 d", 7, 30),
    ("gt_30d", "> 30 d", 30, None),
)


@dataclass(frozen=True)
class Period:
    start: date
    end: date

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """``[from, until)``: the first day's midnight to the midnight after the last day."""
        return operator_day_bounds(self.start)[0], operator_day_bounds(self.end)[1]


def _ratio(part: int, whole: int) -> float | None:
    """``None`` (shown as "—") when there is nothing to divide by, never a misleading 0."""
    return part / whole if whole else None


def _tickets_created(start_at: datetime, end_at: datetime):
    return Ticket.objects.filter(created_at__gte=start_at, created_at__lt=end_at, merged_into__isnull=True)


def duration_label(seconds: float | None) -> str:
    """Seconds for a person: minutes under an hour, hours under two days, then days."""
    if seconds is None:
        return "—"
    if seconds < 3600:
        return _("%(n)s min") % {"n": f"{seconds / 60:.0f}"}
    if seconds < 2 * 86400:
        return _("%(n)s h") % {"n": f"{seconds / 3600:.1f}"}
    return _("%(n)s d") % {"n": f"{seconds / 86400:.1f}"}


def week_label(monday: date) -> str:
    year, week, _day = monday.isocalendar()
    return f"{year}-W{week:02d}"


def team_label(code: str | None) -> str:
    return str(TeamCode(code).label) if code in TeamCode.values else pgettext("feedback report", "(no team)")


def _group_label(by: str, key) -> str:
    if by == "team":
        return team_label(key)
    if by == "priority":
        return str(Priority(key).label) if key in Priority.values else str(key)
    if by == "category":
        return str(Category(key).label) if key in Category.values else str(key)
    return week_label(key)


def _group_order(by: str, key):
    if by == "priority":  # crisis first, as the queue sorts
        return -PRIORITY_ORDER.index(key) if key in Priority.values else 0
    if by == "category":
        return Category.values.index(key) if key in Category.values else len(Category.values)
    if by == "team":
        return (key is None, key or "")
    return key


def sla_share(*, start: date, end: date, by: str) -> list[dict]:
    """Tickets created from ``start`` to ``end`` grouped ``by`` team, priority, category
    or (ISO) week, with each target's outcome counted: one query.

    ``[{"key", "label", "tickets", "first_response": {"met", "breached", "pending",
    "share"}, "resolution": {...}}, ...]``; ``share`` is met / (met + breached), None
    when nothing was decided. Groups with no ticket are absent."""
    if by not in GROUPINGS:
        raise ValueError(f"unknown grouping {by!r}")
    start_at, end_at = Period(start, end).bounds
    qs = _tickets_created(start_at, end_at)
    if by == "week":
        qs = qs.annotate(key=TruncWeek("created_at", tzinfo=operator_timezone(), output_field=DateField()))
    else:
        qs = qs.annotate(key=F("team__code") if by == "team" else F(by))
    counts = {}
    for kind in KINDS:
        of_kind = Q(sla_targets__kind=kind)
        counts[f"{kind}__met"] = Count("sla_targets", filter=of_kind & _MET)
        counts[f"{kind}__breached"] = Count("sla_targets", filter=of_kind & _BREACHED)
        counts[f"{kind}__all"] = Count("sla_targets", filter=of_kind)
    rows = qs.values("key").annotate(tickets=Count("id", distinct=True), **counts).order_by()
    out = []
    for row in rows:
        item = {"key": row["key"], "label": _group_label(by, row["key"]), "tickets": row["tickets"]}
        for kind in KINDS:
            met, breached, total = row[f"{kind}__met"], row[f"{kind}__breached"], row[f"{kind}__all"]
            item[kind] = {
                "met": met,
                "breached": breached,
                "pending": total - met - breached,
                "share": _ratio(met, met + breached),
            }
        out.append(item)
    out.sort(key=lambda r: _group_order(by, r["key"]))
    return out


def sla_share_total(rows: list[dict]) -> dict:
    """The "all" row of a ``sla_share`` table, summed from its groups (every grouping
    partitions the same tickets, so any one of them gives the same total)."""
    total = {"key": None, "label": pgettext("feedback report", "All"), "tickets": sum(r["tickets"] for r in rows)}
    for kind in KINDS:
        met = sum(r[kind]["met"] for r in rows)
        breached = sum(r[kind]["breached"] for r in rows)
        pending = sum(r[kind]["pending"] for r in rows)
        total[kind] = {"met": met, "breached": breached, "pending": pending, "share": _ratio(met, met + breached)}
    return total


# --- response and resolution times --------------------------------------------------


def _seconds_sql(later: str, earlier: str) -> str:
    """Wall-clock seconds between two timestamp columns, as a float on both backends.
    SQLite keeps julianday() to the millisecond, so the float is rounded there."""
    if connection.vendor == "postgresql":
        return f"CAST(EXTRACT(EPOCH FROM ({later} - {earlier})) AS double precision)"
    return f"ROUND((julianday({later}) - julianday({earlier})) * 86400.0, 3)"


def _percentile_sql(num: int, den: int) -> str:
    """The ``num/den`` percentile with linear interpolation (what PostgreSQL's
    ``percentile_cont`` computes): over the ``n`` sorted values of a partition, 0-based
    position ``p·(n−1)`` lies between ``k = ⌊p·(n−1)⌋`` and ``k+1`` with weight
    ``frac``. Integer arithmetic gives ``k`` and ``frac`` without FLOOR (which SQLite
    lacks): ``k = num·(n−1) div den``, ``frac = (num·(n−1) mod den) / den``. Reads
    ``i`` (0-based row number), ``n`` (partition size) and ``s`` (the value)."""
    # "%%": the query goes out with parameters, so a literal modulo sign is doubled.
    k, rem = f"({num} * (n - 1) / {den})", f"({num} * (n - 1) %% {den})"
    return (
        f"SUM(CASE WHEN i = {k} THEN s * ({den} - {rem}) / {float(den)} "
        f"WHEN i = {k} + 1 THEN s * {rem} / {float(den)} END)"
    )


def _times_sql() -> str:
    ticket, team = Ticket._meta.db_table, Team._meta.db_table
    fr = _seconds_sql("t.first_responded_at", "t.created_at")
    res = _seconds_sql("t.resolved_at", "t.created_at")
    # Both scopes (every ticket, and per team) and both measures in one pass: the rows
    # are stacked with a scope and a measure, numbered per partition, and the wanted
    # positions picked out by conditional aggregates.
    return f"""
        WITH d AS (
            SELECT tm.code AS team, {fr} AS fr, {res} AS res
            FROM {ticket} t LEFT JOIN {team} tm ON tm.id = t.team_id
            WHERE t.created_at >= %s AND t.created_at < %s AND t.merged_into_id IS NULL
        ), v AS (
            SELECT 'team' AS scope, team, 'first_response' AS measure, fr AS s FROM d WHERE fr IS NOT NULL
            UNION ALL SELECT 'team', team, 'resolution', res FROM d WHERE res IS NOT NULL
            UNION ALL SELECT 'all', NULL, 'first_response', fr FROM d WHERE fr IS NOT NULL
            UNION ALL SELECT 'all', NULL, 'resolution', res FROM d WHERE res IS NOT NULL
        ), r AS (
            SELECT scope, team, measure, s,
                   ROW_NUMBER() OVER (PARTITION BY scope, team, measure ORDER BY s) - 1 AS i,
                   COUNT(*) OVER (PARTITION BY scope, team, measure) AS n
            FROM v
        )
        SELECT scope, team, measure, MAX(n), {_percentile_sql(1, 2)}, {_percentile_sql(9, 10)}
        FROM r
        GROUP BY scope, team, measure
    """


def _empty_times() -> dict:
    return {kind: {"count": 0, "median": None, "p90": None} for kind in KINDS}


def response_times_between(*, start_at: datetime, end_at: datetime) -> dict:
    """Median and p90, in seconds, of the wall-clock time from creation to the first
    response and to resolution, for tickets created in ``[start_at, end_at)``: one query.

    ``{"overall": {"first_response": {"count", "median", "p90"}, "resolution": {...}},
    "teams": [{"key", "label", "first_response": {...}, "resolution": {...}}, ...]}``.
    Tickets still waiting for a response (or a resolution) are not in that measure."""
    with connection.cursor() as cursor:
        cursor.execute(_times_sql(), [sql_datetime(start_at), sql_datetime(end_at)])
        rows = cursor.fetchall()
    overall, teams = _empty_times(), {}
    for scope, team, measure, n, median, p90 in rows:
        target = overall if scope == "all" else teams.setdefault(team, _empty_times())
        target[measure] = {"count": int(n), "median": float(median), "p90": float(p90)}
    return {
        "overall": overall,
        "teams": [
            {"key": code, "label": team_label(code), **teams[code]}
            for code in sorted(teams, key=lambda c: (c is None, c or ""))
        ],
    }


def response_times(*, start: date, end: date) -> dict:
    """``response_times_between`` over operator days ``start`` to ``end`` (both included)."""
    start_at, end_at = Period(start, end).bounds
    return response_times_between(start_at=start_at, end_at=end_at)


# --- backlog ------------------------------------------------------------------------


def backlog_by_age(*, now: datetime) -> list[dict]:
    """Open tickets at ``now`` per team and priority, counted in age buckets (< 1 d,
    1–3 d, 3–7 d, 7–30 d, > 30 d since creation; a bucket includes its lower bound):
    one query. ``[{"team", "team_label", "priority", "priority_label", "buckets":
    {key: n}, "total"}, ...]``, by team then priority (crisis first)."""
    counts = {}
    for key, _label, low, high in AGE_BUCKETS:
        q = Q(created_at__lte=now - timedelta(days=low))
        if high is not None:
            q &= Q(created_at__gt=now - timedelta(days=high))
        counts[key] = Count("id", filter=q)
    rows = (
        Ticket.objects.filter(status__in=OPEN_STATUSES, merged_into__isnull=True)
        .values("team__code", "priority")
        .annotate(total=Count("id"), **counts)
        .order_by()
    )
    out = [
        {
            "team": row["team__code"],
            "team_label": team_label(row["team__code"]),
            "priority": row["priority"],
            "priority_label": _group_label("priority", row["priority"]),
            "buckets": {key: row[key] for key, *_rest in AGE_BUCKETS},
            "total": row["total"],
        }
        for row in rows
    ]
    out.sort(key=lambda r: (_group_order("team", r["team"]), _group_order("priority", r["priority"])))
    return out


# --- the dashboard's card --------------------------------------------------------------


def feedback_summary(*, now: datetime) -> dict:
    """The dashboard's feedback card, over rolling windows ending at ``now``:
    ``open`` (the queue's size), ``breached_open`` (open tickets with a breached
    target), ``first_response_median_7d`` (seconds, tickets created in the last 7
    days; ``..._label`` for people), ``csat_30d`` ({"average", "count", "satisfied_share"}) and ``nps_90d``
    ({"nps", "count"}). Four aggregate queries."""
    breached = SlaTarget.objects.filter(ticket=OuterRef("pk")).filter(
        Q(state=SlaTarget.State.BREACHED) | Q(breached_at__isnull=False)
    )
    queue = Ticket.objects.filter(status__in=OPEN_STATUSES, merged_into__isnull=True).aggregate(
        open=Count("id"), breached_open=Count("id", filter=Q(Exists(breached)))
    )
    times = response_times_between(start_at=now - timedelta(days=7), end_at=now)
    csat = CsatResponse.objects.filter(answered_at__gt=now - timedelta(days=30), answered_at__lte=now).aggregate(
        average=Avg("score"), count=Count("id"), satisfied=Count("id", filter=Q(score__gte=4))
    )
    nps = NpsResponse.objects.filter(answered_at__gt=now - timedelta(days=90), answered_at__lte=now).aggregate(
        count=Count("id"),
        promoters=Count("id", filter=Q(score__gte=9)),
        detractors=Count("id", filter=Q(score__lte=6)),
    )
    median = times["overall"][SlaTarget.Kind.FIRST_RESPONSE]["median"]
    return {
        "open": queue["open"],
        "breached_open": queue["breached_open"],
        "breached_share": _ratio(queue["breached_open"], queue["open"]),
        "first_response_median_7d": median,
        "first_response_median_7d_label": duration_label(median),
        "csat_30d": {
            "average": float(csat["average"]) if csat["average"] is not None else None,
            "count": csat["count"],
            "satisfied_share": _ratio(csat["satisfied"], csat["count"]),
        },
        "nps_90d": {"nps": nps_score(nps["promoters"], nps["detractors"], nps["count"]), "count": nps["count"]},
    }


def nps_score(promoters: int, detractors: int, count: int) -> float | None:
    """NPS = % promoters (9–10) − % detractors (0–6), from −100 to 100; None with no answer."""
    if not count:
        return None
    return 100.0 * (promoters - detractors) / count


def bench_calls(*, start: datetime, end: datetime) -> dict[str, Callable[[], object]]:
    """Every report over ``start``..``end`` as a call without arguments, by name, for the
    benchmark (``bench/feedback.py``): the operator days the two instants fall on."""
    from .satisfaction import csat_by_team_week, nps_by_week

    tz = operator_timezone()
    first, last = start.astimezone(tz).date(), end.astimezone(tz).date()
    calls: dict[str, Callable[[], object]] = {
        f"sla_share_{by}": (lambda by=by: sla_share(start=first, end=last, by=by)) for by in GROUPINGS
    }
    calls["response_times"] = lambda: response_times(start=first, end=last)
    calls["backlog_by_age"] = lambda: backlog_by_age(now=end)
    calls["csat_by_team_week"] = lambda: csat_by_team_week(start=first, end=last)
    calls["nps_by_week"] = lambda: nps_by_week(start=first, end=last)
    return calls

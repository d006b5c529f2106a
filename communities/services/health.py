"""Group health per group and day, rolled up into ``GroupHealthDay``.

**Days** are the operators' days (``OPS_DEFAULT_CUSTOMER_TIMEZONE``, Asia/Shanghai in
the demo; ``core.timezones``), like every other day in Ops Desk: a message sent at
23:59 Shanghai time counts on that day, one at 00:00 on the next. The database turns a
UTC time into that day itself (``AT TIME ZONE`` on PostgreSQL, Django's registered
function on SQLite), so a DST change keeps days whole. A check-in counts on its own
``day`` (the day it was made for, as ingested).

**Per group and day** (every group, every day of the range — a quiet day is a row of
zeros, so trends have no holes):

- ``messages``: messages sent that day; ``active_members``: distinct known senders.
- ``members``: membership spans open at the end of the day (joined before the day's
  end, not left before it). A member who leaves and rejoins has two spans, never
  both open, so this is the number of people in the group.
- ``joins`` / ``leaves``: spans opened / closed that day (leaving and rejoining on one
  day is one leave and one join).
- ``leave_rate`` (退群率) = leaves / members at the *start* of the day (end-of-day
  members − joins + leaves); 0 when the group had nobody at the start. Someone who
  joins and leaves on the same day counts in the numerator only, so a tiny group can
  exceed 1 — the counts are stored beside the rate.
- ``checkins`` = check-ins of that day; ``checkin_rate`` = distinct members who
  checked in / members at the end of the day (0 for an empty group).
- ``activity_signups`` = sign-ups to the group's activities made that day;
  ``activity_rate`` = distinct customers who signed up that day / members at the end.

**How**: one ``INSERT … SELECT … ON CONFLICT (group_id, day) DO UPDATE`` over the
whole range (PostgreSQL and SQLite ≥ 3.24 both speak it): re-running a range rewrites
the same rows (idempotent), and the number of queries does not depend on the number
of groups or days. Members per day are a running sum (a window function) of each
day's joins minus leaves on top of the members at the range's start, so spans are
read once, not once per day."""

from datetime import date, timedelta

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ApplicationError
from core.sql import sql_datetime
from core.timezones import operator_day_bounds, operator_timezone
from core.validation import DATE_MIN

from ..models import Activity, ActivitySignup, CheckIn, CommunityGroup, GroupHealthDay, GroupMessage, Membership
from ..selectors.health import DAY_FIELDS

MAX_DAYS = 366

_T = {
    "health": GroupHealthDay._meta.db_table,
    "group": CommunityGroup._meta.db_table,
    "membership": Membership._meta.db_table,
    "message": GroupMessage._meta.db_table,
    "checkin": CheckIn._meta.db_table,
    "activity": Activity._meta.db_table,
    "signup": ActivitySignup._meta.db_table,
}
# The figures of a day, in the table's column order (the pages read the same list).
_COUNTS = list(DAY_FIELDS)


def operator_today() -> date:
    return timezone.now().astimezone(operator_timezone()).date()


def health_range_check(day_from, day_to) -> tuple[date, date]:
    """Refuses a range that is reversed, longer than ``MAX_DAYS`` days or reaches past
    today (the operators' today: it may be rolled up while it goes on)."""
    if not isinstance(day_from, date) or not isinstance(day_to, date):
        raise ApplicationError(_("Give both days of the range."), code="invalid", details={"range": ["missing"]})
    if day_from < DATE_MIN:
        # Before 1970 there is nothing to roll up, and year 1 has no operators' day in UTC.
        raise ApplicationError(
            _("The range starts before %(min)s.") % {"min": DATE_MIN.isoformat()},
            code="invalid_range",
            details={"day_from": ["too early"]},
        )
    if day_from > day_to:
        raise ApplicationError(
            _("The range starts after it ends (%(a)s > %(b)s).") % {"a": day_from, "b": day_to},
            code="invalid_range",
            details={"day_from": ["after day_to"]},
        )
    if (day_to - day_from).days + 1 > MAX_DAYS:
        raise ApplicationError(
            _("A roll-up covers at most %(n)s days.") % {"n": MAX_DAYS},
            code="invalid_range",
            details={"day_to": ["too long"]},
        )
    if day_to > operator_today():
        raise ApplicationError(
            _("The range reaches into the future (%(d)s).") % {"d": day_to},
            code="invalid_range",
            details={"day_to": ["future"]},
        )
    return day_from, day_to


def _local_day(column: str) -> tuple[str, list]:
    """SQL for the operators' day of a UTC timestamp column, and its parameters."""
    sql, params = connection.ops.datetime_cast_date_sql(column, (), operator_timezone().key)
    return sql, list(params)


def _date_param() -> str:
    return "CAST(%s AS date)" if connection.vendor == "postgresql" else "%s"


def _group_filter(alias: str, group_ids: list[int] | None) -> tuple[str, list]:
    if group_ids is None:
        return "", []
    return f" AND {alias}.group_id IN ({', '.join(['%s'] * len(group_ids))})", list(group_ids)


def _rollup_sql(day_from: date, day_to: date, group_ids: list[int] | None) -> tuple[str, list]:
    start, end = operator_day_bounds(day_from)[0], operator_day_bounds(day_to)[1]
    lo, hi = sql_datetime(start), sql_datetime(end)
    days = [day_from + timedelta(days=i) for i in range((day_to - day_from).days + 1)]
    dp = _date_param()
    t = _T
    params: list = []

    days_sql = ", ".join([f"({dp})"] * len(days))
    params += [d.isoformat() for d in days]

    gf, gp = ("", []) if group_ids is None else (f" WHERE g.id IN ({', '.join(['%s'] * len(group_ids))})", group_ids)
    grid = f"SELECT g.id AS group_id, d.day AS day FROM {t['group']} g CROSS JOIN days d{gf}"
    params += gp

    mf, mp = _group_filter("m", group_ids)
    base = (
        f"SELECT m.group_id, COUNT(*) AS n FROM {t['membership']} m "
        f"WHERE m.joined_at < %s AND (m.left_at IS NULL OR m.left_at >= %s){mf} GROUP BY m.group_id"
    )
    params += [lo, lo, *mp]

    joined_day, jp = _local_day("m.joined_at")
    joins = (
        f"SELECT m.group_id, {joined_day} AS day, COUNT(*) AS n "
        f"FROM {t['group']} g JOIN {t['membership']} m ON m.group_id = g.id "
        f"WHERE m.joined_at >= %s AND m.joined_at < %s{mf} GROUP BY 1, 2"
    )
    params += [*jp, lo, hi, *mp]

    left_day, lp = _local_day("m.left_at")
    leaves = (
        f"SELECT m.group_id, {left_day} AS day, COUNT(*) AS n "
        f"FROM {t['group']} g JOIN {t['membership']} m ON m.group_id = g.id "
        f"WHERE m.left_at >= %s AND m.left_at < %s{mf} GROUP BY 1, 2"
    )
    params += [*lp, lo, hi, *mp]

    flow = (
        "SELECT grid.group_id, grid.day, COALESCE(j.n, 0) AS joins, COALESCE(l.n, 0) AS leaves, "
        "COALESCE(b.n, 0) + SUM(COALESCE(j.n, 0) - COALESCE(l.n, 0)) OVER ("
        "PARTITION BY grid.group_id ORDER BY grid.day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS members "
        "FROM grid LEFT JOIN base b ON b.group_id = grid.group_id "
        "LEFT JOIN joins j ON j.group_id = grid.group_id AND j.day = grid.day "
        "LEFT JOIN leaves l ON l.group_id = grid.group_id AND l.day = grid.day"
    )

    # The per-day reads start from the groups so that, once history outgrows a day's
    # share, the planner can walk each group's (group, time) index instead of
    # scanning every message ever ingested (there is no index on the time alone).
    sent_day, sp = _local_day("x.sent_at")
    xf, xp = _group_filter("x", group_ids)
    msgs = (
        f"SELECT x.group_id, {sent_day} AS day, COUNT(*) AS n, COUNT(DISTINCT x.customer_id) AS people "
        f"FROM {t['group']} g JOIN {t['message']} x ON x.group_id = g.id "
        f"WHERE x.sent_at >= %s AND x.sent_at < %s{xf} GROUP BY 1, 2"
    )
    params += [*sp, lo, hi, *xp]

    cf, cp = _group_filter("c", group_ids)
    checks = (
        f"SELECT c.group_id, c.day, COUNT(*) AS n, COUNT(DISTINCT c.customer_id) AS people "
        f"FROM {t['group']} g JOIN {t['checkin']} c ON c.group_id = g.id "
        f"WHERE c.day >= {dp} AND c.day <= {dp}{cf} GROUP BY c.group_id, c.day"
    )
    params += [day_from.isoformat(), day_to.isoformat(), *cp]

    signed_day, up = _local_day("s.at")
    af, ap = _group_filter("a", group_ids)
    signups = (
        f"SELECT a.group_id, {signed_day} AS day, COUNT(*) AS n, COUNT(DISTINCT s.customer_id) AS people "
        f"FROM {t['signup']} s JOIN {t['activity']} a ON a.id = s.activity_id "
        f"WHERE s.at >= %s AND s.at < %s{af} GROUP BY 1, 2"
    )
    params += [*up, lo, hi, *ap]

    def rate(num: str, den: str) -> str:
        return f"CASE WHEN {den} > 0 THEN 1.0 * {num} / {den} ELSE 0.0 END"

    start_members = "(f.members - f.joins + f.leaves)"
    select = (
        "SELECT f.group_id, f.day, "
        "CAST(f.members AS INTEGER), COALESCE(msg.n, 0), COALESCE(msg.people, 0), "
        "CAST(f.joins AS INTEGER), CAST(f.leaves AS INTEGER), "
        f"{rate('f.leaves', start_members)}, "
        f"COALESCE(chk.n, 0), {rate('COALESCE(chk.people, 0)', 'f.members')}, "
        f"COALESCE(sig.n, 0), {rate('COALESCE(sig.people, 0)', 'f.members')}, %s "
        "FROM flow f "
        "LEFT JOIN msgs msg ON msg.group_id = f.group_id AND msg.day = f.day "
        "LEFT JOIN checks chk ON chk.group_id = f.group_id AND chk.day = f.day "
        "LEFT JOIN signups sig ON sig.group_id = f.group_id AND sig.day = f.day "
        "WHERE 1 = 1"  # SQLite needs a WHERE before ON CONFLICT after a join
    )
    params.append(sql_datetime(timezone.now()))

    columns = ["group_id", "day", *_COUNTS, "computed_at"]
    updates = ", ".join(f"{c} = excluded.{c}" for c in [*_COUNTS, "computed_at"])
    # The CTEs inside the INSERT (not before it): SQLite's driver reports the row count
    # only of a statement that starts with INSERT.
    sql = (
        f"INSERT INTO {t['health']} ({', '.join(columns)}) "
        f"WITH days(day) AS (VALUES {days_sql}), grid AS ({grid}), base AS ({base}), joins AS ({joins}), "
        f"leaves AS ({leaves}), flow AS ({flow}), msgs AS ({msgs}), checks AS ({checks}), "
        f"signups AS ({signups}) {select} "
        f"ON CONFLICT (group_id, day) DO UPDATE SET {updates}"
    )
    return sql, params


def health_rollup(day_from: date, day_to: date, *, group_ids: list[int] | None = None) -> int:
    """Recompute GroupHealthDay for every group (or just ``group_ids``) and each day in
    [day_from, day_to] with set-based SQL; returns the number of rows written.

    One statement, whatever the number of groups and days; running it again writes
    the same figures. Refuses a reversed range, one over 366 days or one reaching past
    today (``health_range_check``)."""
    day_from, day_to = health_range_check(day_from, day_to)
    if group_ids is not None:
        group_ids = sorted({int(pk) for pk in group_ids})
        if not group_ids:
            return 0
    sql, params = _rollup_sql(day_from, day_to, group_ids)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.rowcount

"""The operators' days: a plain date an operator enters (a definition's date, a
command's ``--as-of``, a page's period) is a day in ``OPS_DEFAULT_CUSTOMER_TIMEZONE``
(Asia/Shanghai by default), the timezone the pages show times in, never a UTC day."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings


def operator_timezone() -> ZoneInfo:
    """The timezone the operators' pages show days in."""
    return ZoneInfo(settings.OPS_DEFAULT_CUSTOMER_TIMEZONE)


def operator_day_bounds(day: date) -> tuple[datetime, datetime]:
    """``(start, end)`` of ``day`` in the operators' timezone, half-open: ``start`` is
    its midnight, ``end`` the next day's (wall-clock, so a DST change keeps days whole)."""
    tz = operator_timezone()
    return datetime.combine(day, time.min, tzinfo=tz), datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)


def operator_end_of_day(day: date) -> datetime:
    """The last instant of ``day`` in the operators' timezone: "as of" that day, all of it included."""
    return datetime.combine(day, time.max, tzinfo=operator_timezone())

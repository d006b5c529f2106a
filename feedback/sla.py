"""The SLA clock's arithmetic: which instants count, how much counted time lies between
two instants, and when a given amount of counted time will have passed. No database:
``feedback.services.clock`` compiles a ``WorkingTime`` from a ``BusinessCalendar`` (and
its ``CalendarDate`` rows) and stores what these functions return.

A ``WorkingTime`` of ``None`` means around the clock: every second counts.

Which hours of a local date count, most specific first:

1. a date an admin added (``CalendarDate``): "holiday" → none, "workday" → the
   make-up working day hours;
2. with ``china_holidays``, mainland China's calendar from the ``chinese_calendar``
   library: a public holiday → none, a make-up working day (调休, e.g. Saturday
   2026-02-14 before the Spring Festival) → the make-up working day hours. Ordinary days
   the library has no entry for keep the weekly hours, so a calendar that also works
   weekends keeps its Saturdays. For a year the library does not cover yet (it raises
   ``NotImplementedError``; version 1.11 knows 2004–2026) the weekly hours alone
   apply: holidays are announced a year ahead, and a clock that stopped working for
   lack of data would be worse than one that counts a holiday as a working day;
3. the weekly hours of the ISO weekday.

The make-up working day hours are the calendar's ``workday_hours``; when it gives none,
Monday's spans (and when Monday is empty too, those of the first weekday that has any).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_FLOOR, Decimal
from itertools import pairwise
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext as _

from core.errors import ApplicationError

if TYPE_CHECKING:
    from .models import BusinessCalendar

#: a span of working time: seconds after local midnight, [start, end)
Span = tuple[int, int]

DAY = timedelta(days=1)
#: the longest run of days without any working time the clock walks before it gives
#: up: a calendar whose next working day is further away than that is broken.
SEARCH_DAYS = 3 * 366
#: the furthest any due time may lie (a sanity bound on absurd targets, not a policy).
HORIZON_DAYS = 100 * 366

_HHMM = re.compile(r"^(\d{2}):(\d{2})$")

CODE_NO_WORKING_TIME = "calendar_no_working_time"
CODE_HOURS_INVALID = "calendar_hours_invalid"


# --- validation ---------------------------------------------------------------------


def _seconds_of(value: Any) -> int | None:
    """ "HH:MM" → seconds after midnight; "24:00" is the end of the day. None when malformed."""
    if not isinstance(value, str):
        return None
    match = _HHMM.match(value)
    if not match:
        return None
    hours, minutes = int(match[1]), int(match[2])
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        return None
    return hours * 3600 + minutes * 60


def _span_text(span: Any) -> str:
    if isinstance(span, list | tuple) and len(span) == 2:
        return f"{span[0]}–{span[1]}"
    return repr(span)


def _spans_problems(value: Any, label: str) -> tuple[list[Span], list[str]]:
    """Parses one day's list of spans; returns the spans that parsed and the problems."""
    if not isinstance(value, list | tuple):
        return [], [_("%(day)s: the hours must be a list of [start, end] spans.") % {"day": label}]
    spans: list[Span] = []
    problems: list[str] = []
    for raw in value:
        pair = raw if isinstance(raw, list | tuple) and len(raw) == 2 else (None, None)
        start, end = _seconds_of(pair[0]), _seconds_of(pair[1])
        if start is None or end is None or start == 24 * 3600:
            problems.append(
                _("%(day)s: %(span)s is not a span of two HH:MM times.") % {"day": label, "span": _span_text(raw)}
            )
        elif end <= start:
            problems.append(_("%(day)s: %(span)s ends before it starts.") % {"day": label, "span": _span_text(raw)})
        else:
            spans.append((start, end))
    spans.sort()
    for (a_start, a_end), (b_start, b_end) in pairwise(spans):
        if b_start < a_end:
            problems.append(
                _("%(day)s: %(a)s and %(b)s overlap.")
                % {"day": label, "a": _clock(a_start, a_end), "b": _clock(b_start, b_end)}
            )
    return spans, problems


def _clock(start: int, end: int) -> str:
    return f"{start // 3600:02d}:{start % 3600 // 60:02d}–{end // 3600:02d}:{end % 3600 // 60:02d}"


def _weekly_problems(weekly_hours: Any) -> tuple[list[list[Span]], list[tuple[str, str]]]:
    weekly: list[list[Span]] = [[] for _day in range(7)]
    if not isinstance(weekly_hours, Mapping):
        return weekly, [
            (CODE_HOURS_INVALID, _("Weekly hours must map ISO weekdays (1 Monday … 7 Sunday) to lists of spans."))
        ]
    problems: list[tuple[str, str]] = []
    for key, value in weekly_hours.items():
        if str(key) not in {"1", "2", "3", "4", "5", "6", "7"}:
            problems.append(
                (CODE_HOURS_INVALID, _("Unknown weekday %(key)s: use 1 (Monday) to 7 (Sunday).") % {"key": key})
            )
            continue
        index = int(key) - 1
        spans, day_problems = _spans_problems(value, str(WEEKDAYS[index]))
        weekly[index] = spans
        problems += [(CODE_HOURS_INVALID, p) for p in day_problems]
    return weekly, problems


def working_time_problems(
    weekly_hours: Any, workday_hours: Any = None, timezone: str | None = None
) -> list[tuple[str, str]]:
    """(code, message) of each problem; ``working_time_errors`` has the messages alone."""
    weekly, problems = _weekly_problems(weekly_hours)
    if workday_hours:
        _spans, workday_problems = _spans_problems(workday_hours, _("make-up working days"))
        problems += [(CODE_HOURS_INVALID, p) for p in workday_problems]
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append((CODE_HOURS_INVALID, _("Unknown timezone %(tz)s.") % {"tz": timezone}))
    if not any(weekly):
        problems.append(
            (
                CODE_NO_WORKING_TIME,
                _("A business-hours calendar with no working time: give at least one weekday some hours."),
            )
        )
    return problems


def working_time_errors(weekly_hours: Any, *, workday_hours: Any = None, timezone: str | None = None) -> list[str]:
    """What is wrong with a calendar's hours, one translated sentence per problem (empty
    when nothing is): malformed spans, a span that ends before it starts, overlapping
    spans, an unknown weekday or timezone, and a week with no working time at all."""
    return [message for _code, message in working_time_problems(weekly_hours, workday_hours, timezone)]


def working_time_check(weekly_hours: Any, *, workday_hours: Any = None, timezone: str | None = None) -> None:
    """Raises ``ApplicationError``: code ``calendar_hours_invalid`` for malformed or
    overlapping spans (or an unknown weekday or timezone), ``calendar_no_working_time``
    for a well-formed week without any working time; ``details.errors`` lists them all."""
    problems = working_time_problems(weekly_hours, workday_hours, timezone)
    if not problems:
        return
    # A malformed span is the thing to fix first (the empty week may just follow from it).
    codes = {code for code, _message in problems}
    code = CODE_HOURS_INVALID if CODE_HOURS_INVALID in codes else CODE_NO_WORKING_TIME
    messages = [message for _code, message in problems]
    raise ApplicationError(" ".join(messages), code=code, details={"errors": messages})


# --- the compiled calendar ----------------------------------------------------------


@dataclass(frozen=True)
class WorkingTime:
    """A calendar compiled for the arithmetic. Build it with ``WorkingTime.build`` (or
    ``working_time_from``), which validates; the fields are already-parsed spans.

    ``dates`` maps a local date to "holiday" or "workday" (admin-added; they win over
    the library). The mapping makes instances unhashable: compare them, don't key on them."""

    timezone: str
    #: seven tuples of spans, Monday first
    weekly: tuple[tuple[Span, ...], ...]
    #: the hours of a make-up working day
    workday: tuple[Span, ...]
    china_holidays: bool = False
    dates: Mapping[date, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        timezone: str,
        weekly_hours: Mapping[str, Any],
        workday_hours: Any = None,
        china_holidays: bool = False,
        dates: Mapping[date, str] | None = None,
    ) -> WorkingTime:
        working_time_check(weekly_hours, workday_hours=workday_hours, timezone=timezone)
        weekly = _weekly_problems(weekly_hours)[0]
        workday = _spans_problems(workday_hours, "")[0] if workday_hours else []
        if not workday:
            workday = weekly[0] or next(spans for spans in weekly if spans)
        return cls(
            timezone=timezone,
            weekly=tuple(tuple(spans) for spans in weekly),
            workday=tuple(workday),
            china_holidays=china_holidays,
            dates=dict(dates or {}),
        )

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)  # zoneinfo keeps one instance per key

    def spans_on(self, day: date) -> tuple[Span, ...]:
        """The working spans of a local date (see the module docstring for the order)."""
        kind = self.dates.get(day)
        if kind == "holiday":
            return ()
        if kind == "workday":
            return self.workday
        if self.china_holidays:
            try:
                is_holiday, name = chinese_calendar.get_holiday_detail(day)
            except NotImplementedError:
                name = None  # a year the library does not know yet: the weekly hours
            if name is not None:
                return () if is_holiday else self.workday
        return self.weekly[day.isoweekday() - 1]

    def instants_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's spans as UTC instants. Built from local wall times one by one, so
        a daylight-saving change moves them as it moves the office's clock."""
        midnight = datetime.combine(day, time(), tzinfo=self.tz)
        return [
            ((midnight + timedelta(seconds=s)).astimezone(UTC), (midnight + timedelta(seconds=e)).astimezone(UTC))
            for s, e in self.spans_on(day)
        ]


def working_time_from(calendar: BusinessCalendar, dates: Mapping[date, str]) -> WorkingTime:
    """Compiles a ``BusinessCalendar`` and its admin-added ``{date: kind}``. Raises
    ``ApplicationError`` (``calendar_no_working_time`` / ``calendar_hours_invalid``)
    when its hours are unusable."""
    return WorkingTime.build(
        timezone=calendar.timezone,
        weekly_hours=calendar.weekly_hours,
        workday_hours=calendar.workday_hours,
        china_holidays=calendar.china_holidays,
        dates=dates,
    )


# --- the arithmetic -----------------------------------------------------------------


def counted_seconds(start: datetime, end: datetime, wt: WorkingTime | None) -> int:
    """Whole seconds of counted time in [start, end); 0 when end is not after start."""
    if end <= start:
        return 0
    if wt is None:
        return int((end - start).total_seconds())
    tz = wt.tz
    day, last = start.astimezone(tz).date(), end.astimezone(tz).date()
    total = timedelta()
    while day <= last:
        for span_start, span_end in wt.instants_on(day):
            lo, hi = max(span_start, start), min(span_end, end)
            if hi > lo:
                total += hi - lo
        day += DAY
    return int(total.total_seconds())


def add_counted(start: datetime, seconds: int, wt: WorkingTime | None) -> datetime:
    """The instant at which ``seconds`` of counted time have passed after ``start`` (in
    UTC). ``seconds <= 0`` gives ``start`` itself: a clock already past its mark is due
    now. Walks whole days; ends in a span's last instant rather than the next day's
    first (a target met at 18:00 is due at 18:00, not at 09:00 the next day).

    Raises ``ApplicationError`` (``calendar_no_working_time``) when more than
    ``SEARCH_DAYS`` days in a row have no working time, and (``sla_beyond_horizon``)
    when the instant lies more than ``HORIZON_DAYS`` away."""
    start = start.astimezone(UTC)
    if seconds <= 0:
        return start
    if wt is None:
        return start + timedelta(seconds=seconds)
    remaining = timedelta(seconds=seconds)
    day = start.astimezone(wt.tz).date()
    idle_days = 0
    for _step in range(HORIZON_DAYS):
        worked = False
        for span_start, span_end in wt.instants_on(day):
            lo = max(span_start, start)
            if span_end <= lo:
                continue
            worked = True
            if remaining <= span_end - lo:
                return lo + remaining
            remaining -= span_end - lo
        idle_days = 0 if worked else idle_days + 1
        if idle_days > SEARCH_DAYS:
            raise ApplicationError(
                _("The business calendar has no working time in the %(days)s days after %(date)s.")
                % {"days": SEARCH_DAYS, "date": (day - SEARCH_DAYS * DAY).isoformat()},
                code=CODE_NO_WORKING_TIME,
            )
        day += DAY
    raise ApplicationError(
        _("The SLA target lies more than %(years)s years ahead.") % {"years": HORIZON_DAYS // 366},
        code="sla_beyond_horizon",
    )


def share_of(target_seconds: int, share: Decimal | float | str) -> int:
    """``share`` of a target in whole seconds (rounded down: warn at, not after, the share)."""
    value = Decimal(target_seconds) * Decimal(str(share))
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def china_holidays_known_until() -> int:
    """The last year ``chinese_calendar`` has the State Council's holiday notice for.
    Later years fall back to the weekly hours until the library is upgraded or an admin
    adds that year's holidays and make-up days to the calendar."""
    return max(day.year for day in chinese_calendar.constants.holidays)

"""The clock's arithmetic, each against a due time worked out by hand in the comment.

Unless a test says otherwise the calendar is the default one: Asia/Shanghai, Monday to
Friday 09:00–12:00 and 13:00–18:00 (8 h a day), mainland China's holidays and make-up
days on. Times are Shanghai wall times."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from django.utils import translation

from core.errors import ApplicationError
from feedback.sla import WorkingTime, add_counted, counted_seconds, share_of, working_time_check, working_time_errors

SH = ZoneInfo("Asia/Shanghai")
H = 3600
SPANS = [["09:00", "12:00"], ["13:00", "18:00"]]
WEEKDAYS = {str(d): SPANS for d in range(1, 6)}


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SH)


def wt(*, dates=None, china=True, weekly=None, workday=None, tz="Asia/Shanghai") -> WorkingTime:
    return WorkingTime.build(
        timezone=tz,
        weekly_hours=WEEKDAYS if weekly is None else weekly,
        workday_hours=workday,
        china_holidays=china,
        dates=dates,
    )


def test_the_library_knows_the_2026_days_these_tests_rely_on():
    # If a new chinese_calendar release changed these, the hand computations below would be wrong.
    assert chinese_calendar.is_workday(date(2026, 2, 14))  # Saturday, make-up day before the Spring Festival
    assert chinese_calendar.is_workday(date(2026, 2, 28))  # Saturday, make-up day after it
    assert all(chinese_calendar.is_holiday(date(2026, 2, d)) for d in range(15, 24))  # Sun 15 … Mon 23
    assert chinese_calendar.is_workday(date(2026, 2, 24))
    assert all(chinese_calendar.is_holiday(date(2026, 10, d)) for d in range(1, 8))  # National Day
    assert chinese_calendar.is_workday(date(2026, 9, 20))  # Sunday, make-up day
    assert chinese_calendar.is_workday(date(2026, 10, 10))  # Saturday, make-up day
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2030, 10, 1))


# --- business hours, weekends --------------------------------------------------------


def test_the_lunch_hour_does_not_count():
    # Mon 2026-03-09 11:00 + 2 h: 11–12 (1 h), lunch, 13–14 (1 h) → 14:00
    assert add_counted(sh(2026, 3, 9, 11, 0), 2 * H, wt()) == sh(2026, 3, 9, 14, 0)
    # 11:30 → 13:30 counts 30 + 30 minutes
    assert counted_seconds(sh(2026, 3, 9, 11, 30), sh(2026, 3, 9, 13, 30), wt()) == H


def test_a_weekend_does_not_count():
    # Fri 2026-03-06 17:00 + 2 h: Fri 17–18 (1 h), Sat and Sun off, Mon 09–10 (1 h) → Mon 2026-03-09 10:00
    assert add_counted(sh(2026, 3, 6, 17, 0), 2 * H, wt()) == sh(2026, 3, 9, 10, 0)
    assert counted_seconds(sh(2026, 3, 6, 17, 0), sh(2026, 3, 9, 10, 0), wt()) == 2 * H


def test_a_target_met_at_the_end_of_the_day_is_due_then_not_next_morning():
    # Mon 09:00 + 8 h = the whole day → Mon 18:00
    assert add_counted(sh(2026, 3, 9, 9, 0), 8 * H, wt()) == sh(2026, 3, 9, 18, 0)


def test_a_start_outside_hours_waits_for_the_next_span():
    # Sat 2026-03-07 15:00 + 30 min: nothing until Mon 09:00 → Mon 09:30
    assert add_counted(sh(2026, 3, 7, 15, 0), 1800, wt()) == sh(2026, 3, 9, 9, 30)
    # Mon 07:00 (before hours) → 09:30 on the same day
    assert add_counted(sh(2026, 3, 9, 7, 0), 1800, wt()) == sh(2026, 3, 9, 9, 30)


def test_several_business_days():
    # Mon 2026-03-09 09:00 + 5 business days (40 h): Mon–Fri 8 h each → Fri 2026-03-13 18:00
    assert add_counted(sh(2026, 3, 9, 9, 0), 40 * H, wt()) == sh(2026, 3, 13, 18, 0)


def test_instants_are_compared_whatever_their_timezone():
    # 03:00 UTC is 11:00 in Shanghai: + 2 h → 14:00 Shanghai = 06:00 UTC
    due = add_counted(datetime(2026, 3, 9, 3, 0, tzinfo=UTC), 2 * H, wt())
    assert due == datetime(2026, 3, 9, 6, 0, tzinfo=UTC)
    assert due.tzinfo == UTC


def test_daylight_saving_moves_the_spans_with_the_office_clock():
    # Berlin, Mon–Fri 09:00–17:00. Fri 2026-03-27 16:00 CET (15:00 UTC) + 2 h: Fri 16–17 (1 h);
    # clocks go forward on Sun 29th; Mon 09:00–10:00 CEST (1 h) → Mon 10:00 CEST = 08:00 UTC
    # (an arithmetic in fixed UTC offsets would say 09:00 UTC).
    berlin = wt(weekly={str(d): [["09:00", "17:00"]] for d in range(1, 6)}, china=False, tz="Europe/Berlin")
    start = datetime(2026, 3, 27, 16, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert add_counted(start, 2 * H, berlin) == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    assert counted_seconds(start, datetime(2026, 3, 30, 8, 0, tzinfo=UTC), berlin) == 2 * H


# --- mainland China's holidays and make-up days -------------------------------------


def test_the_make_up_saturday_before_the_spring_festival_counts():
    # Fri 2026-02-13 17:00 + 3 h: Fri 17–18 (1 h); Sat 2026-02-14 is a make-up working day,
    # 09:00–11:00 (2 h) → Sat 2026-02-14 11:00
    assert add_counted(sh(2026, 2, 13, 17, 0), 3 * H, wt()) == sh(2026, 2, 14, 11, 0)


def test_the_spring_festival_does_not_count():
    # Sat 2026-02-14 17:00 + 2 h: 17–18 (1 h); Sun 15 … Mon 23 holiday; Tue 2026-02-24 09–10 → 10:00
    assert add_counted(sh(2026, 2, 14, 17, 0), 2 * H, wt()) == sh(2026, 2, 24, 10, 0)
    # nine days off count nothing
    assert counted_seconds(sh(2026, 2, 14, 18, 0), sh(2026, 2, 24, 9, 0), wt()) == 0


def test_the_make_up_saturday_after_the_spring_festival_counts():
    # Fri 2026-02-27 17:00 + 2 h: Fri 1 h; Sat 2026-02-28 (make-up) 09–10 → Sat 10:00
    assert add_counted(sh(2026, 2, 27, 17, 0), 2 * H, wt()) == sh(2026, 2, 28, 10, 0)


def test_national_day_does_not_count():
    # Wed 2026-09-30 17:00 + 2 h: Wed 1 h; Oct 1–7 holiday; Thu 2026-10-08 09–10 → 10:00
    assert add_counted(sh(2026, 9, 30, 17, 0), 2 * H, wt()) == sh(2026, 10, 8, 10, 0)


def test_a_make_up_sunday_counts():
    # Fri 2026-09-18 17:00 + 2 h: Fri 1 h; Sat 19 off; Sun 2026-09-20 is a make-up day, 09–10 → Sun 10:00
    assert add_counted(sh(2026, 9, 18, 17, 0), 2 * H, wt()) == sh(2026, 9, 20, 10, 0)


def test_without_china_holidays_national_day_is_a_thursday_like_any_other():
    # Wed 2026-09-30 17:00 + 2 h: Wed 1 h; Thu 2026-10-01 09–10 → 10:00
    assert add_counted(sh(2026, 9, 30, 17, 0), 2 * H, wt(china=False)) == sh(2026, 10, 1, 10, 0)
    # and the make-up Saturday is just a Saturday: Fri 2026-02-13 17:00 + 3 h → Mon 2026-02-16 11:00
    assert add_counted(sh(2026, 2, 13, 17, 0), 3 * H, wt(china=False)) == sh(2026, 2, 16, 11, 0)


def test_a_year_the_library_does_not_know_falls_back_to_the_weekly_hours():
    # chinese_calendar 1.11 has no 2030: Mon 2030-09-30 17:00 + 2 h: Mon 1 h; Tue 2030-10-01 counts
    # as an ordinary Tuesday, 09–10 → 10:00
    assert add_counted(sh(2030, 9, 30, 17, 0), 2 * H, wt()) == sh(2030, 10, 1, 10, 0)


def test_make_up_days_work_the_workday_hours():
    # weekly 09:00–18:00 without lunch; make-up days 10:00–15:00.
    # Fri 2026-02-13 17:00 + 3 h: Fri 17–18 (1 h); Sat 14 10:00–12:00 (2 h) → Sat 12:00
    calendar = wt(weekly={str(d): [["09:00", "18:00"]] for d in range(1, 6)}, workday=[["10:00", "15:00"]])
    assert add_counted(sh(2026, 2, 13, 17, 0), 3 * H, calendar) == sh(2026, 2, 14, 12, 0)


def test_make_up_days_work_mondays_hours_when_the_calendar_gives_none():
    # Monday 08:00–12:00, Tue–Fri 09:00–18:00. Fri 2026-02-13 17:00 + 3 h: Fri 1 h;
    # Sat 14 works Monday's 08:00–10:00 (2 h) → Sat 10:00
    weekly = {"1": [["08:00", "12:00"]], **{str(d): [["09:00", "18:00"]] for d in range(2, 6)}}
    assert add_counted(sh(2026, 2, 13, 17, 0), 3 * H, wt(weekly=weekly)) == sh(2026, 2, 14, 10, 0)


def test_a_seven_day_calendar_keeps_its_saturdays_but_not_the_holidays():
    seven = wt(weekly={str(d): [["09:00", "18:00"]] for d in range(1, 8)})
    # Sat 2026-03-07 17:00 + 2 h: Sat 1 h; Sun 2026-03-08 09–10 → Sun 10:00
    assert add_counted(sh(2026, 3, 7, 17, 0), 2 * H, seven) == sh(2026, 3, 8, 10, 0)
    # Sat 2026-02-14 17:00 + 2 h: Sat 1 h; the Spring Festival is off even here; Tue 24 09–10 → 10:00
    assert add_counted(sh(2026, 2, 14, 17, 0), 2 * H, seven) == sh(2026, 2, 24, 10, 0)


# --- admin-added dates --------------------------------------------------------------


def test_an_admin_added_holiday():
    # Tue 2026-03-10 17:00 + 2 h, Wed 11 declared a day off: Tue 1 h; Wed off; Thu 2026-03-12 09–10 → 10:00
    calendar = wt(dates={date(2026, 3, 11): "holiday"})
    assert add_counted(sh(2026, 3, 10, 17, 0), 2 * H, calendar) == sh(2026, 3, 12, 10, 0)


def test_an_admin_added_workday():
    # Fri 2026-03-13 17:00 + 2 h, Sat 14 declared a working day: Fri 1 h; Sat 09–10 → Sat 10:00
    calendar = wt(dates={date(2026, 3, 14): "workday"})
    assert add_counted(sh(2026, 3, 13, 17, 0), 2 * H, calendar) == sh(2026, 3, 14, 10, 0)


def test_admin_dates_win_over_the_library():
    # The make-up Saturday 2026-02-14 declared a day off: Fri 2026-02-13 17:00 + 3 h: Fri 1 h;
    # Sat off; Sun 15 … Mon 23 holiday; Tue 24 09–11 (2 h) → 11:00
    calendar = wt(dates={date(2026, 2, 14): "holiday"})
    assert add_counted(sh(2026, 2, 13, 17, 0), 3 * H, calendar) == sh(2026, 2, 24, 11, 0)
    # Fri 2026-10-02 (National Day) declared a working day: Wed 09-30 17:00 + 2 h: Wed 1 h;
    # Thu 1st off; Fri 2nd 09–10 → Fri 10:00
    calendar = wt(dates={date(2026, 10, 2): "workday"})
    assert add_counted(sh(2026, 9, 30, 17, 0), 2 * H, calendar) == sh(2026, 10, 2, 10, 0)


# --- around the clock ---------------------------------------------------------------


def test_around_the_clock_counts_every_second_even_on_holidays():
    # crisis: 2026-02-17 (Spring Festival) 03:00 + 1 h → 04:00; + 24 h → 2026-02-18 03:00
    assert add_counted(sh(2026, 2, 17, 3, 0), H, None) == sh(2026, 2, 17, 4, 0)
    assert add_counted(sh(2026, 2, 17, 3, 0), 24 * H, None) == sh(2026, 2, 18, 3, 0)
    assert counted_seconds(sh(2026, 2, 17, 3, 0), sh(2026, 2, 18, 3, 0), None) == 24 * H


def test_no_time_and_backwards_time():
    start = sh(2026, 3, 9, 10, 0)
    assert add_counted(start, 0, wt()) == start
    assert add_counted(start, -60, wt()) == start  # already past its mark: due now
    assert counted_seconds(start, start - timedelta(hours=1), wt()) == 0
    assert counted_seconds(start, start - timedelta(hours=1), None) == 0


def test_the_warning_share_rounds_down():
    assert share_of(3600, "0.80") == 2880
    assert share_of(1001, "0.80") == 800  # 800.8 → warn at 800 s, not after


# --- bounded search -----------------------------------------------------------------


def test_a_long_gap_is_walked_day_by_day():
    # Mondays only, 09:00–12:00, and every Monday for 104 weeks a day off: Mon 2026-03-09 + 104 weeks
    # = Mon 2028-03-06, the first working day → 09:00 + 1 h = 10:00
    off = {date(2026, 3, 9) + timedelta(weeks=w): "holiday" for w in range(104)}
    calendar = wt(weekly={"1": [["09:00", "12:00"]]}, china=False, dates=off)
    assert add_counted(sh(2026, 3, 9, 9, 0), H, calendar) == sh(2028, 3, 6, 10, 0)


def test_a_calendar_whose_working_days_never_come_is_an_error_not_a_hang():
    never = WorkingTime(timezone="Asia/Shanghai", weekly=((),) * 7, workday=())  # skips validation on purpose
    with pytest.raises(ApplicationError) as caught:
        add_counted(sh(2026, 3, 9, 9, 0), H, never)
    assert caught.value.code == "calendar_no_working_time"
    # more than three years of Mondays off is the same
    off = {date(2026, 3, 9) + timedelta(weeks=w): "holiday" for w in range(4 * 53)}
    calendar = wt(weekly={"1": [["09:00", "12:00"]]}, china=False, dates=off)
    with pytest.raises(ApplicationError) as caught:
        add_counted(sh(2026, 3, 9, 9, 0), H, calendar)
    assert caught.value.code == "calendar_no_working_time"


# --- bad calendars ------------------------------------------------------------------


def _code(weekly, **kwargs) -> str:
    with pytest.raises(ApplicationError) as caught:
        working_time_check(weekly, **kwargs)
    return caught.value.code


def test_a_calendar_with_no_working_time_is_refused():
    assert _code({}) == "calendar_no_working_time"
    assert _code({"1": [], "6": []}) == "calendar_no_working_time"
    (message,) = working_time_errors({})
    assert "no working time" in message
    with pytest.raises(ApplicationError) as caught:
        WorkingTime.build(timezone="Asia/Shanghai", weekly_hours={})
    assert caught.value.code == "calendar_no_working_time"


@pytest.mark.parametrize(
    ("weekly", "words"),
    [
        ({"1": [["9am", "12:00"]]}, "is not a span of two HH:MM times"),
        ({"1": [["09:00", "25:00"]]}, "is not a span of two HH:MM times"),
        ({"1": [["09:00", "12:60"]]}, "is not a span of two HH:MM times"),
        ({"1": [["09:00"]]}, "is not a span of two HH:MM times"),
        ({"1": ["09:00-12:00"]}, "is not a span of two HH:MM times"),
        ({"1": "09:00-12:00"}, "must be a list of [start, end] spans"),
        ({"1": [["12:00", "09:00"]]}, "ends before it starts"),
        ({"1": [["09:00", "09:00"]]}, "ends before it starts"),
        ({"1": [["09:00", "12:00"], ["11:00", "13:00"]]}, "overlap"),
        ({"8": [["09:00", "12:00"]]}, "Unknown weekday 8"),
        ([["09:00", "12:00"]], "must map ISO weekdays"),
    ],
)
def test_malformed_spans_are_refused(weekly, words):
    good_tuesday = {"2": [["09:00", "18:00"]]}
    hours = {**good_tuesday, **weekly} if isinstance(weekly, dict) else weekly
    errors = working_time_errors(hours)
    assert any(words in e for e in errors), errors
    assert _code(hours) == "calendar_hours_invalid"


def test_bad_workday_hours_and_timezone_are_refused():
    assert any("make-up working days" in e for e in working_time_errors(WEEKDAYS, workday_hours=[["18:00", "09:00"]]))
    assert working_time_errors(WEEKDAYS, timezone="Mars/Olympus") == ["Unknown timezone Mars/Olympus."]
    assert _code(WEEKDAYS, timezone="Mars/Olympus") == "calendar_hours_invalid"


def test_good_hours_pass():
    assert working_time_errors(WEEKDAYS, workday_hours=SPANS, timezone="Asia/Shanghai") == []
    # spans may touch, and the day may end at 24:00
    assert working_time_errors({"7": [["00:00", "12:00"], ["12:00", "24:00"]]}) == []
    around = wt(weekly={"7": [["00:00", "12:00"], ["12:00", "24:00"]]}, china=False)
    # Sun 2026-03-08 23:00 + 2 h: Sun 23–24 (1 h); next Sunday 00–01 → Sun 2026-03-15 01:00
    assert add_counted(sh(2026, 3, 8, 23, 0), 2 * H, around) == sh(2026, 3, 15, 1, 0)


@pytest.mark.django_db
def test_a_year_the_holiday_library_lacks_is_flagged_until_an_admin_adds_its_dates():
    from feedback.models import BusinessCalendar, CalendarDate
    from feedback.selectors.sla import china_holidays_gap
    from feedback.sla import china_holidays_known_until

    last = china_holidays_known_until()
    assert last >= 2026
    assert china_holidays_gap(today=date(last, 6, 1)) is None
    assert china_holidays_gap(today=date(last, 11, 15)) == last + 1
    calendar = BusinessCalendar.objects.get(china_holidays=True)
    CalendarDate.objects.create(calendar=calendar, date=date(last + 1, 1, 1), kind="holiday", name="元旦")
    assert china_holidays_gap(today=date(last, 11, 15)) is None

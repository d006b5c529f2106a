"""rules.py on plain values: no database."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from incentives import rules
from incentives.rules import LevelStep

SH = "Asia/Shanghai"
NY = "America/New_York"


# --- expiry_for ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("earned", "months", "expected"),
    [
        # mid-month → first instant of the month after the 12th month after
        (datetime(2026, 3, 15, 12, tzinfo=ZoneInfo(SH)), 12, datetime(2027, 4, 1, tzinfo=ZoneInfo(SH))),
        # first and last instant of a month land on the same expiry
        (datetime(2026, 3, 1, 0, 0, tzinfo=ZoneInfo(SH)), 12, datetime(2027, 4, 1, tzinfo=ZoneInfo(SH))),
        (datetime(2026, 3, 31, 23, 59, tzinfo=ZoneInfo(SH)), 12, datetime(2027, 4, 1, tzinfo=ZoneInfo(SH))),
        # December rolls over two years ends
        (datetime(2026, 12, 10, tzinfo=ZoneInfo(SH)), 12, datetime(2028, 1, 1, tzinfo=ZoneInfo(SH))),
        (datetime(2026, 11, 10, tzinfo=ZoneInfo(SH)), 1, datetime(2027, 1, 1, tzinfo=ZoneInfo(SH))),
        (datetime(2026, 12, 31, tzinfo=ZoneInfo(SH)), 1, datetime(2027, 2, 1, tzinfo=ZoneInfo(SH))),
        (datetime(2026, 1, 31, tzinfo=ZoneInfo(SH)), 1, datetime(2026, 3, 1, tzinfo=ZoneInfo(SH))),
        (datetime(2026, 6, 5, tzinfo=ZoneInfo(SH)), 24, datetime(2028, 7, 1, tzinfo=ZoneInfo(SH))),
    ],
)
def test_expiry_for_month_ends(earned, months, expected):
    assert rules.expiry_for(earned, months=months, tz=SH) == expected


def test_expiry_for_uses_the_customers_local_month():
    # 2026-03-31 17:00 UTC is already April 1st in Shanghai but still March 31st in New York.
    earned = datetime(2026, 3, 31, 17, 0, tzinfo=UTC)
    shanghai = rules.expiry_for(earned, months=12, tz=SH)
    new_york = rules.expiry_for(earned, months=12, tz=NY)
    assert shanghai == datetime(2027, 5, 1, tzinfo=ZoneInfo(SH))
    assert new_york == datetime(2027, 4, 1, tzinfo=ZoneInfo(NY))
    # local midnight, not UTC midnight
    assert shanghai.astimezone(UTC) == datetime(2027, 4, 30, 16, 0, tzinfo=UTC)
    assert new_york.astimezone(UTC) == datetime(2027, 4, 1, 4, 0, tzinfo=UTC)


@pytest.mark.parametrize("months", [0, -1])
def test_expiry_for_never_when_months_is_zero(months):
    assert rules.expiry_for(datetime(2026, 3, 15, tzinfo=UTC), months=months, tz=SH) is None


# --- purchase points -------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "per_yuan", "expected"),
    [
        ("99.90", "1", 99),
        ("99.99", "1", 99),
        ("100.00", "1", 100),
        ("0.99", "1", 0),
        ("10.50", "2", 21),
        ("33.33", "0.5", 16),
        ("19.99", "1.5", 29),  # 29.985 → 29
        ("0", "1", 0),
    ],
)
def test_purchase_points_round_down(amount, per_yuan, expected):
    assert rules.purchase_points(Decimal(amount), Decimal(per_yuan)) == expected


# --- streaks ---------------------------------------------------------------------


def test_streak_lengths_with_gaps_and_duplicates():
    d = date(2026, 3, 1)
    days = [d, d + timedelta(1), d + timedelta(2), d + timedelta(4), d + timedelta(5), d + timedelta(1)]
    assert rules.streak_lengths(days) == {
        d: 1,
        d + timedelta(1): 2,
        d + timedelta(2): 3,
        d + timedelta(4): 1,
        d + timedelta(5): 2,
    }


def test_streak_lengths_order_does_not_matter_and_crosses_month_ends():
    days = [date(2026, 3, 2), date(2026, 2, 28), date(2026, 3, 1)]
    assert rules.streak_lengths(days) == {date(2026, 2, 28): 1, date(2026, 3, 1): 2, date(2026, 3, 2): 3}
    assert rules.streak_lengths([]) == {}


@pytest.mark.parametrize(
    ("length", "n", "pays"),
    [
        (7, 7, True),
        (14, 7, True),
        (21, 7, True),
        (6, 7, False),
        (8, 7, False),
        (13, 7, False),
        (0, 7, False),
        (7, 0, False),
        (3, 3, True),
    ],
)
def test_streak_pays(length, n, pays):
    assert rules.streak_pays(length, n) is pays


# --- caps ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "already", "cap", "expected"),
    [
        (20, 0, 100, 20),
        (20, 80, 100, 20),
        (20, 90, 100, 10),
        (20, 100, 100, 0),
        (20, 120, 100, 0),
        (20, 500, 0, 20),
        (1000, 0, 0, 1000),
    ],
)
def test_clamp_to_cap(requested, already, cap, expected):
    assert rules.clamp_to_cap(requested, already_today=already, cap=cap) == expected


# --- levels ----------------------------------------------------------------------

MEMBER, SILVER, GOLD = LevelStep(1, 0), LevelStep(2, 1000), LevelStep(3, 5000)
LEVELS = [GOLD, MEMBER, SILVER]  # unsorted on purpose
NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("growth", "expected"), [(0, MEMBER), (999, MEMBER), (1000, SILVER), (4999, SILVER), (5000, GOLD), (10**9, GOLD)]
)
def test_level_for(growth, expected):
    assert rules.level_for(growth, LEVELS) == expected


def test_level_for_below_every_threshold_and_without_levels():
    assert rules.level_for(50, [LevelStep(1, 100)]) is None
    assert rules.level_for(50, []) is None


def _next(current, growth, below_since=None, now=NOW):
    return rules.next_level(
        current=current, growth=growth, below_since=below_since, now=now, levels=LEVELS, grace_days=30, margin_pct=10
    )


def test_next_level_upgrade_is_immediate_and_clears_below_since():
    assert _next(MEMBER, 1000) == (SILVER, None)
    assert _next(MEMBER, 6000) == (GOLD, None)
    assert _next(SILVER, 1200, below_since=NOW - timedelta(days=3)) == (SILVER, None)
    assert _next(None, 5000) == (GOLD, None)


def test_next_level_wobbling_within_the_margin_never_flaps():
    # Silver's threshold is 1000; 10% margin → only under 900 counts as clearly below.
    for day, growth in enumerate([999, 950, 901, 900, 1001, 960]):
        level, below = _next(SILVER, growth, now=NOW + timedelta(days=40 * day))
        assert (level, below) == (SILVER, None), growth


def test_next_level_downgrade_only_after_the_grace_period_while_clearly_below():
    level, below = _next(SILVER, 800)
    assert (level, below) == (SILVER, NOW)  # starts the clock
    assert _next(SILVER, 800, below_since=NOW, now=NOW + timedelta(days=29, hours=23)) == (SILVER, NOW)
    assert _next(SILVER, 800, below_since=NOW, now=NOW + timedelta(days=30)) == (MEMBER, None)


def test_next_level_recovery_resets_below_since():
    assert _next(SILVER, 950, below_since=NOW, now=NOW + timedelta(days=10)) == (SILVER, None)
    # clearly below again later: the clock starts afresh, the old start does not count
    later = NOW + timedelta(days=40)
    assert _next(SILVER, 800, below_since=None, now=later) == (SILVER, later)


def test_next_level_downgrade_may_drop_several_levels_and_to_no_level():
    assert _next(GOLD, 500, below_since=NOW - timedelta(days=31)) == (MEMBER, None)
    level, below = rules.next_level(
        current=LevelStep(9, 100),
        growth=10,
        below_since=NOW - timedelta(days=31),
        now=NOW,
        levels=[LevelStep(9, 100)],
        grace_days=30,
        margin_pct=10,
    )
    assert (level, below) == (None, None)


def test_local_date_uses_the_timezone():
    at = datetime(2026, 3, 31, 17, 0, tzinfo=UTC)
    assert rules.local_date(at, SH) == date(2026, 4, 1)
    assert rules.local_date(at, "UTC") == date(2026, 3, 31)

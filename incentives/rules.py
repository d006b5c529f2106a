"""Pure incentive logic: expiry dates, streaks, caps, levels, FIFO expiry.

No database and no request here, so every rule is testable on plain values.

FIFO expiry without mutating the ledger
---------------------------------------
Credits (earns, positive adjustments, refunds of spends) are lots with an
``expires_at``. Debits (spends, expiries, negative adjustments) consume lots
in expiry order, earliest first. A reversal of a credit reduces that very lot,
so it carries the lot's ``expires_at`` (a negative entry *with* an expiry).
Then at any instant ``now``::

    due(now) = max(0, Σ amount of entries with expires_at <= now
                      + Σ amount of negative entries with no expires_at)

is exactly the part of the lapsed lots that no debit consumed. Writing an
expire entry of ``-due`` (no expires_at, so a debit) brings ``due`` to zero,
which makes the expiry job idempotent. The same sum with ``now + 30 days``
gives "points expiring soon".
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from zoneinfo import ZoneInfo


def expiry_for(earned_at: datetime, *, months: int, tz: str) -> datetime | None:
    """Points earned in a month lapse at the end of the ``months``-th month after it
    (in the customer's timezone): earned 2026-03-15 with 12 → lapses at 2027-04-01 00:00."""
    if months <= 0:
        return None
    local = earned_at.astimezone(ZoneInfo(tz))
    month_index = local.year * 12 + (local.month - 1) + months + 1
    return datetime(month_index // 12, month_index % 12 + 1, 1, tzinfo=ZoneInfo(tz))


def local_date(at: datetime, tz: str) -> date:
    return at.astimezone(ZoneInfo(tz)).date()


def purchase_points(amount: Decimal, points_per_yuan: Decimal) -> int:
    """Whole points for a paid amount, rounded down (¥99.90 at 1/yuan → 99)."""
    return int((amount * points_per_yuan).to_integral_value(rounding=ROUND_FLOOR))


def streak_lengths(days: Iterable[date]) -> dict[date, int]:
    """For each check-in day, how many consecutive days the streak has reached on it."""
    lengths: dict[date, int] = {}
    for day in sorted(set(days)):
        lengths[day] = lengths.get(day - timedelta(days=1), 0) + 1
    return lengths


def streak_pays(length: int, streak_days: int) -> bool:
    """A streak rule pays on every N-th consecutive day (7, 14, 21, … for N = 7)."""
    return streak_days > 0 and length > 0 and length % streak_days == 0


def clamp_to_cap(requested: int, *, already_today: int, cap: int) -> int:
    """Points still payable today under a daily cap (0 = no cap)."""
    if cap <= 0:
        return requested
    return max(0, min(requested, cap - already_today))


@dataclass(frozen=True)
class LevelStep:
    id: int
    threshold: int


def level_for(growth: int, levels: Sequence[LevelStep]) -> LevelStep | None:
    """The highest level whose threshold the growth value reaches."""
    best = None
    for level in sorted(levels, key=lambda lv: lv.threshold):
        if growth >= level.threshold:
            best = level
    return best


def next_level(
    *,
    current: LevelStep | None,
    growth: int,
    below_since: datetime | None,
    now: datetime,
    levels: Sequence[LevelStep],
    grace_days: int,
    margin_pct: int,
) -> tuple[LevelStep | None, datetime | None]:
    """(level, below_since) after looking at the growth value now.

    Upgrades are immediate. A downgrade needs the growth value to stay *clearly*
    under the current level's threshold (by ``margin_pct``) for the whole grace
    period; wobbling around the threshold never flaps the level.
    """
    target = level_for(growth, levels)
    if current is None or (target is not None and target.threshold >= current.threshold):
        return target, None
    clearly_below = growth < current.threshold * (100 - margin_pct) / 100
    if not clearly_below:
        return current, None
    if below_since is None:
        return current, now
    if now - below_since >= timedelta(days=grace_days):
        return target, None
    return current, below_since

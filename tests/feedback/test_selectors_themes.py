"""Theme reads (feedback.selectors.themes): the weekly trend in the operators' ISO
weeks, hand-counted, from one query for every theme; ticket counts without merged
duplicates; the roadmap list."""

from datetime import UTC, date, datetime

import pytest

from core.errors import NotFound
from feedback.models import RoadmapItem, Theme
from feedback.selectors import themes as selectors
from tests.feedback.factories import RoadmapItemFactory, ThemeFactory, TicketFactory

pytestmark = pytest.mark.django_db

# Wednesday 2026-11-25, 10:00 in Asia/Shanghai (UTC+8).
NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
MONDAYS = [date(2026, 10, 5), date(2026, 10, 12), date(2026, 10, 19), date(2026, 10, 26),
           date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16), date(2026, 11, 23)]  # fmt: skip


def at(y, m, d, hh, mm) -> datetime:
    """A UTC instant (the comments give the Shanghai wall clock)."""
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


def test_the_weeks_are_the_last_eight_iso_weeks_in_the_operators_timezone():
    assert selectors.trend_weeks(now=NOW) == MONDAYS
    # Sunday 2026-11-22 23:30 UTC is already Monday 07:30 in Shanghai: that week is the last.
    assert selectors.trend_weeks(now=at(2026, 11, 22, 23, 30))[-1] == date(2026, 11, 23)


def test_weekly_counts_hand_checked(django_assert_num_queries):
    a, b, quiet = ThemeFactory(name="A"), ThemeFactory(name="B"), ThemeFactory(name="quiet")
    # A, this week (from Mon 11-23): Mon 00:30 Shanghai (Sunday 16:30 UTC — the UTC
    # week would put it a week early) and Wed 09:00.
    TicketFactory(theme=a, created_at=at(2026, 11, 22, 16, 30))
    TicketFactory(theme=a, created_at=at(2026, 11, 25, 1, 0))
    # A, the week before: Sunday 11-22 23:30 Shanghai.
    TicketFactory(theme=a, created_at=at(2026, 11, 22, 15, 30))
    # A, the first week of the window: Mon 10-05 00:00 Shanghai exactly.
    TicketFactory(theme=a, created_at=at(2026, 10, 4, 16, 0))
    # A, not counted: a minute before the window; a merged duplicate; after `now`.
    TicketFactory(theme=a, created_at=at(2026, 10, 4, 15, 59))
    original = TicketFactory(theme=b, created_at=at(2026, 11, 10, 4, 0))
    TicketFactory(theme=a, created_at=at(2026, 11, 24, 4, 0), merged_into=original)
    TicketFactory(theme=a, created_at=at(2026, 11, 25, 3, 0))
    # B, three in the week of 11-09 (one of them `original` above).
    TicketFactory(theme=b, created_at=at(2026, 11, 9, 0, 0))  # Mon 08:00 Shanghai
    TicketFactory(theme=b, created_at=at(2026, 11, 15, 15, 59))  # Sun 23:59 Shanghai
    # No theme: not counted anywhere.
    TicketFactory(created_at=at(2026, 11, 24, 4, 0))
    with django_assert_num_queries(1):
        counts = selectors.themes_weekly_counts(now=NOW)
    assert counts == {
        a.pk: [1, 0, 0, 0, 0, 0, 1, 2],
        b.pk: [0, 0, 0, 0, 0, 3, 0, 0],
    }
    assert quiet.pk not in counts
    with django_assert_num_queries(1):
        assert selectors.themes_weekly_counts(theme_ids=[b.pk, quiet.pk], now=NOW) == {b.pk: [0, 0, 0, 0, 0, 3, 0, 0]}


def test_theme_list_counts_tickets_without_merged_duplicates():
    big, small = ThemeFactory(name="big"), ThemeFactory(name="small", status=Theme.Status.DISMISSED)
    first = TicketFactory(theme=big)
    TicketFactory(theme=big)
    TicketFactory(theme=big, merged_into=first)
    TicketFactory(theme=small)
    rows = list(selectors.theme_list())
    assert [(t.name, t.ticket_count) for t in rows] == [("big", 2), ("small", 1)]
    assert [t.name for t in selectors.theme_list(statuses=[Theme.Status.DISMISSED])] == ["small"]
    assert selectors.theme_get(theme_id=big.pk).ticket_count == 2


def test_theme_tickets_are_the_most_recent_first():
    theme = ThemeFactory()
    older = TicketFactory(theme=theme, created_at=at(2026, 11, 1, 0, 0))
    newer = TicketFactory(theme=theme, created_at=at(2026, 11, 2, 0, 0))
    TicketFactory(theme=theme, merged_into=newer)
    assert selectors.theme_tickets(theme=theme) == [newer, older]
    assert selectors.theme_tickets(theme=theme, limit=1) == [newer]


def test_roadmap_list_with_ticket_counts_and_a_status_filter():
    planned = RoadmapItemFactory(title="planned", status=RoadmapItem.Status.PLANNED)
    RoadmapItemFactory(title="proposed")
    TicketFactory(theme=planned.theme)
    TicketFactory(theme=planned.theme)
    rows = {i.title: i.ticket_count for i in selectors.roadmap_list()}
    assert rows == {"planned": 2, "proposed": 0}
    assert [i.title for i in selectors.roadmap_list(status="planned")] == ["planned"]


def test_unknown_ids_are_not_found():
    with pytest.raises(NotFound):
        selectors.theme_get(theme_id=404)
    with pytest.raises(NotFound):
        selectors.roadmap_item_get(item_id=404)

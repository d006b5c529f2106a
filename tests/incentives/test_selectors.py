"""Check-in streaks in SQL (gaps and islands) against the pure Python definition."""

import random
from datetime import UTC, datetime, timedelta
from itertools import count, pairwise

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incentives import rules, selectors, services
from users.models import Event

from .factories import CustomerFactory, seed_defaults

pytestmark = pytest.mark.django_db

ZONES = ["UTC", "Asia/Shanghai", "America/Los_Angeles", "Asia/Kathmandu", "Pacific/Kiritimati", "America/St_Johns"]
_keys = count()


def _checkins(customer, times):
    Event.objects.bulk_create(
        [
            Event(customer=customer, type="checkin", occurred_at=at, dedupe_key=f"streak-test:{next(_keys)}")
            for at in times
        ]
    )
    return list(
        Event.objects.filter(customer=customer, type="checkin")
        .order_by("-id")
        .values_list("id", flat=True)[: len(times)]
    )


def _python_lengths(customer_ids):
    """The old semantics: every check-in read back, its local day, ``rules.streak_lengths``."""
    days = {cid: [] for cid in customer_ids}
    for cid, at, tz in Event.objects.filter(customer_id__in=customer_ids, type="checkin").values_list(
        "customer_id", "occurred_at", "customer__timezone"
    ):
        days[cid].append(rules.local_date(at, tz))
    return {cid: rules.streak_lengths(d) for cid, d in days.items() if d}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_streaks_in_sql_match_the_python_definition_on_random_check_ins(seed):
    rng = random.Random(seed)
    base = datetime(2026, 2, 20, tzinfo=UTC)
    customers = [CustomerFactory(timezone=rng.choice(ZONES)) for _ in range(12)]
    for c in customers[:-1]:  # the last one never checks in
        active = rng.sample(range(60), rng.randint(1, 45))  # gaps, runs, month ends
        times = []
        for day in active:
            for _ in range(rng.choice([1, 1, 1, 2, 3])):  # several check-ins on one day count once
                # any hour, so the local day differs from the UTC day near midnight
                times.append(base + timedelta(days=day, minutes=rng.randrange(24 * 60)))
        _checkins(c, times)
    ids = [c.pk for c in customers]
    expected = _python_lengths(ids)

    streaks = selectors.checkin_streaks(customer_ids=ids)
    got = {
        cid: {
            s.start + timedelta(days=i): s.length_on(s.start + timedelta(days=i)) for s in runs for i in range(s.length)
        }
        for cid, runs in streaks.items()
    }
    assert got == expected
    for runs in streaks.values():  # oldest first, separated by at least one missed day
        assert all(a.end + timedelta(days=1) < b.start for a, b in pairwise(runs))
    assert selectors.checkin_streak_longest(customer_ids=ids) == {cid: max(d.values()) for cid, d in expected.items()}

    cut = (base + timedelta(days=30)).date()
    recent = selectors.checkin_streaks(customer_ids=ids, ending_on_or_after=cut)
    assert recent == {cid: kept for cid, runs in streaks.items() if (kept := [s for s in runs if s.end >= cut])}


def test_streaks_of_nobody():
    assert selectors.checkin_streaks(customer_ids=[]) == {}
    assert selectors.checkin_streak_longest(customer_ids=[CustomerFactory().pk]) == {}


def _apply_one_more_checkin(history_days):
    """A customer with check-ins on every other day for ``history_days`` days, then one
    more today; returns what paying it asked of the database."""
    seed_defaults()
    c = CustomerFactory(timezone="Asia/Shanghai")
    start = datetime(2026, 1, 1, 2, tzinfo=UTC)
    _checkins(c, [start + timedelta(days=d) for d in range(0, history_days, 2)])
    new = _checkins(c, [start + timedelta(days=history_days + 1)])
    rows = []

    def count_rows(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.lstrip().upper().startswith(("SELECT", "WITH")):
            rows.append(context["cursor"].rowcount)
        return result

    with CaptureQueriesContext(connection) as queries, connection.execute_wrapper(count_rows):
        services.event_rules_apply(event_ids=new)
    return len(queries), rows


def test_paying_a_check_in_costs_the_same_queries_however_long_the_history():
    few, _ = _apply_one_more_checkin(10)
    many, _ = _apply_one_more_checkin(200)
    assert few == many


@pytest.mark.postgres
def test_paying_a_check_in_reads_streaks_not_every_past_check_in():
    # The streak rule and the streak badge read one row per streak (the running one, the
    # longest) from the database, not one per check-in the customer ever made.
    _, few = _apply_one_more_checkin(10)
    _, many = _apply_one_more_checkin(200)
    assert sum(many) == sum(few)
    assert max(many) < 10

"""KPI numbers on a small dataset whose answers are worked out by hand."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from core.models import JobRun
from dashboards import selectors
from tests.users.factories import CustomerFactory, EventFactory, OrderFactory

NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)  # 20:00 in Asia/Shanghai


@pytest.fixture
def dataset(db):
    """Five customers; the comments give each one's part in the expected numbers."""
    c1 = CustomerFactory(signup_at=NOW - timedelta(days=2), channel="douyin", paid_orders=2)  # new 7d, repeat
    c2 = CustomerFactory(signup_at=NOW - timedelta(days=10), channel="douyin", paid_orders=1)  # new 30d, buyer
    c3 = CustomerFactory(signup_at=NOW - timedelta(days=20), channel="wechat", paid_orders=0)  # new 30d
    c4 = CustomerFactory(signup_at=NOW - timedelta(days=40), channel="", paid_orders=3)  # old, repeat
    c5 = CustomerFactory(signup_at=NOW - timedelta(days=3), channel="", paid_orders=0)  # new 7d

    OrderFactory(customer=c1, amount=Decimal("100.00"), occurred_at=NOW - timedelta(days=1))
    # 2026-03-26 18:00 UTC is 03-27 02:00 in Shanghai: the chart must put it on the 27th.
    OrderFactory(customer=c1, amount=Decimal("50.50"), occurred_at=datetime(2026, 3, 26, 18, 0, tzinfo=UTC))
    OrderFactory(customer=c2, amount=Decimal("30.00"), occurred_at=NOW - timedelta(days=29))
    OrderFactory(customer=c4, amount=Decimal("200.00"), occurred_at=NOW - timedelta(days=31))  # too old
    OrderFactory(customer=c2, amount=Decimal("999.00"), status="refunded", occurred_at=NOW - timedelta(days=2))
    OrderFactory(customer=c3, amount=Decimal("77.00"), status="cancelled", occurred_at=NOW - timedelta(days=2))
    OrderFactory(customer=c5, amount=Decimal("10.00"), occurred_at=NOW + timedelta(hours=1))  # after now

    EventFactory(customer=c1, type="login", occurred_at=NOW - timedelta(hours=2))
    EventFactory(customer=c1, type="page_view", occurred_at=NOW - timedelta(hours=3))  # same customer
    EventFactory(customer=c2, type="login", occurred_at=NOW - timedelta(hours=25))
    EventFactory(customer=c3, type="checkin", occurred_at=NOW - timedelta(days=29))
    EventFactory(customer=c4, type="login", occurred_at=NOW - timedelta(days=31))  # too old
    EventFactory(customer=c5, type="login", occurred_at=NOW + timedelta(minutes=5))  # after now
    return [c1, c2, c3, c4, c5]


def test_kpis_on_known_dataset(dataset):
    kpis = selectors.dashboard_kpis(now=NOW)
    assert kpis["customers_total"] == 5
    assert kpis["customers_new_7d"] == 2
    assert kpis["customers_new_30d"] == 4
    assert kpis["new_by_channel_30d"] == [
        {"channel": "douyin", "count": 2},
        {"channel": "", "count": 1},
        {"channel": "wechat", "count": 1},
    ]
    assert kpis["paid_orders_30d"] == 3
    assert kpis["revenue_30d"] == Decimal("180.50")
    assert kpis["average_order_value_30d"] == Decimal("60.17")
    assert (kpis["buyers"], kpis["repeat_buyers"]) == (3, 2)
    assert kpis["repeat_purchase_rate"] == pytest.approx(2 / 3)
    assert (kpis["dau"], kpis["mau"]) == (1, 3)
    assert kpis["stickiness"] == pytest.approx(1 / 3)


def test_kpis_on_empty_database_have_no_division_by_zero(db):
    kpis = selectors.dashboard_kpis(now=NOW)
    assert kpis["customers_total"] == 0
    assert kpis["revenue_30d"] == Decimal("0")
    assert kpis["average_order_value_30d"] is None
    assert kpis["repeat_purchase_rate"] is None
    assert kpis["stickiness"] is None
    assert kpis["new_by_channel_30d"] == []


def test_kpis_are_a_fixed_number_of_queries(dataset, django_assert_num_queries):
    CustomerFactory.create_batch(20, signup_at=NOW - timedelta(days=1))
    with django_assert_num_queries(4):
        selectors.dashboard_kpis(now=NOW)


def test_daily_series_uses_team_days_and_fills_gaps(dataset):
    series = selectors.dashboard_daily_series(now=NOW, tz="Asia/Shanghai")
    assert len(series) == 30
    assert series[0]["day"] == date(2026, 3, 2)
    assert series[-1]["day"] == date(2026, 3, 31)
    by_day = {row["day"]: row for row in series}
    assert by_day[date(2026, 3, 30)]["revenue"] == Decimal("100.00")
    assert by_day[date(2026, 3, 27)]["revenue"] == Decimal("50.50")
    assert by_day[date(2026, 3, 26)]["revenue"] == Decimal("0")
    assert by_day[date(2026, 3, 2)]["revenue"] == Decimal("30.00")
    assert sum(row["revenue"] for row in series) == Decimal("180.50")
    new = {row["day"]: row["new_customers"] for row in series if row["new_customers"]}
    assert new == {date(2026, 3, 29): 1, date(2026, 3, 28): 1, date(2026, 3, 21): 1, date(2026, 3, 11): 1}


def test_job_runs_recent_newest_first(db):
    JobRun.objects.create(
        job="segments_recompute",
        status="succeeded",
        started_at=NOW - timedelta(hours=2),
        finished_at=NOW - timedelta(hours=2) + timedelta(seconds=90),
    )
    JobRun.objects.create(
        job="campaigns_dispatch",
        status="failed",
        started_at=NOW - timedelta(hours=1),
        finished_at=NOW - timedelta(hours=1) + timedelta(seconds=3),
    )
    runs = list(selectors.job_runs_recent(limit=1))
    assert [r.job for r in runs] == ["campaigns_dispatch"]

"""manage.py recompute_segments."""

import json
from datetime import UTC, datetime, timedelta
from io import StringIO
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone, translation

from segments import selectors
from segments.management.commands import recompute_segments
from segments.models import SegmentRun

from .factories import AS_OF, OrderFactory


def run_command(*args) -> str:
    out = StringIO()
    call_command("recompute_segments", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def orders(db):
    for i in range(5):
        OrderFactory(occurred_at=AS_OF - timedelta(days=3 * i))


def test_sync_prints_json_with_phases(orders):
    report = json.loads(run_command("--sync", "--as-of", "2026-10-31", "--chunk-size", "2"))
    assert report["status"] == "published"
    # A plain date means the end of that day in the operators' timezone (Asia/Shanghai, UTC+8), not in UTC.
    assert datetime.fromisoformat(report["as_of"]) == datetime(2026, 10, 31, 15, 59, 59, 999999, tzinfo=UTC)
    assert datetime.fromisoformat(report["as_of"]) == datetime(
        2026, 10, 31, 23, 59, 59, 999999, tzinfo=ZoneInfo("Asia/Shanghai")
    )
    assert set(report["phases"]) >= {"aggregate", "model_fit", "model_predict", "score", "publish"}
    assert report["counts"]["customers"] == 5
    run = selectors.run_published()
    assert run.pk == report["run"] and run.chunks_total >= 3


def test_as_of_today_is_today_in_the_operators_timezone(orders, settings):
    """Today is the operators' today, which need not be UTC's: an operators' timezone
    chosen so that, whatever the hour now, their date differs from the UTC date."""
    before = timezone.now()
    zone = "Etc/GMT-14" if before.hour >= 10 else "Etc/GMT+12"  # UTC+14 / UTC-12
    settings.OPS_DEFAULT_CUSTOMER_TIMEZONE = zone
    today = timezone.localdate(timezone=ZoneInfo(zone))
    assert today != before.astimezone(UTC).date()
    report = json.loads(run_command("--sync", "--as-of", today.isoformat()))
    assert before <= datetime.fromisoformat(report["as_of"]) <= timezone.now()


def test_an_as_of_in_the_future_fails_clearly(orders):
    with translation.override("en"), pytest.raises(CommandError, match="in the future"):
        run_command("--sync", "--as-of", "2999-01-01")
    assert not SegmentRun.objects.exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("31/10/2026", "is not a date"),
        ("2026-13-01", "is not a date"),
        ("yesterday", "is not a date"),
        ("2026-10-31T12:00:00", "needs a UTC offset"),
    ],
)
def test_a_bad_date_fails_clearly(orders, value, message):
    with pytest.raises(CommandError, match=message):
        run_command("--sync", "--as-of", value)
    assert not SegmentRun.objects.exists()


def test_no_orders_fails_clearly(db):
    with translation.override("en"), pytest.raises(CommandError, match="no paid orders"):
        run_command("--sync")
    assert not SegmentRun.objects.exists()


def test_incremental_prints_json(orders):
    run_command("--sync", "--as-of", "2026-10-31T12:00:00+00:00")
    OrderFactory(occurred_at=AS_OF - timedelta(days=1))
    report = json.loads(run_command("--incremental"))
    assert report == {"incremental": True, "customers_changed": 1}


def test_without_sync_the_work_is_queued(orders, monkeypatch):
    sent = []
    monkeypatch.setattr(
        recompute_segments.segments_recompute_task,
        "delay",
        lambda *args: sent.append(args) or SimpleNamespace(id="task-1"),
    )
    out = run_command("--as-of", "2026-10-31T12:00:00+08:00", "--chunk-size", "500")
    assert "queued recompute (task task-1)" in out
    assert sent == [("2026-10-31T12:00:00+08:00", 500)]
    assert not SegmentRun.objects.exists()

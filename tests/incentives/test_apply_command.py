"""manage.py apply_incentive_rules."""

from datetime import UTC, datetime
from io import StringIO

from django.core.management import call_command

from tests.users.factories import OrderFactory


def test_since_is_a_day_in_the_operators_timezone(db):
    # 2026-11-01 starts at 2026-10-31 16:00 UTC in Asia/Shanghai (UTC+8).
    OrderFactory(occurred_at=datetime(2026, 10, 31, 15, 59, tzinfo=UTC))  # 31 Oct, 23:59 Shanghai: before
    OrderFactory(occurred_at=datetime(2026, 10, 31, 16, 0, tzinfo=UTC))  # 1 Nov, 00:00 Shanghai: on that day
    OrderFactory(occurred_at=datetime(2026, 10, 31, 20, 0, tzinfo=UTC))  # 1 Nov, 04:00 Shanghai
    out = StringIO()
    call_command("apply_incentive_rules", "--since", "2026-11-01", stdout=out)
    assert "orders: 2 looked at" in out.getvalue()

from datetime import UTC, datetime

import pytest

from incentives import selectors, services
from incentives.models import PointsEntry
from tests.users.factories import CustomerFactory

NOW = datetime(2026, 6, 15, 4, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_earn_spend_expire_flow():
    c = CustomerFactory()
    services.points_post(customer=c, kind="earn", amount=100, reason="r", idempotency_key="a", now=NOW)
    services.points_post(customer=c, kind="spend", amount=30, reason="r", idempotency_key="b", now=NOW)
    assert selectors.points_summary(customer=c, now=NOW)["balance"] == 70
    soon = selectors.points_summary(customer=c, now=datetime(2027, 6, 10, tzinfo=UTC))
    assert soon["expiring_soon"] == 70
    # earned 2026-06 → lapses 2027-07-01 local
    later = datetime(2027, 7, 2, tzinfo=UTC)
    assert services.points_expire(now=later) == 1
    assert services.points_expire(now=later) == 0
    assert selectors.points_summary(customer=c, now=later)["balance"] == 0
    assert services.ledger_reconcile() == []
    assert PointsEntry.objects.filter(kind="expire").get().amount == -70

"""One flow end to end through a real Celery worker process on the configured
broker (Redis when REDIS_URL is set, the file-system broker otherwise)."""

import time
from decimal import Decimal

import pytest

from core.batch import validate_batch
from users.models import Customer
from users.rows import OrderRow
from users.services import orders_upsert_batch

from .factories import CustomerFactory


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_order_batch_rolls_up_in_a_real_worker(worker_queue):
    customer = CustomerFactory()
    payload = {
        "items": [
            {
                "external_id": "w1",
                "customer": customer.external_id,
                "amount": "120.00",
                "occurred_at": "2026-05-01T10:00:00+08:00",
            },
            {
                "external_id": "w2",
                "customer": customer.external_id,
                "amount": "30.50",
                "occurred_at": "2026-06-01T10:00:00+08:00",
            },
            {
                "external_id": "w3",
                "customer": customer.external_id,
                "amount": "999.00",
                "status": "refunded",
                "occurred_at": "2026-06-02T10:00:00+08:00",
            },
        ]
    }
    result = orders_upsert_batch(batch=validate_batch(payload, OrderRow))
    assert result.created == 3

    # The roll-up is not done in the request: the worker does it after commit.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        customer.refresh_from_db()
        if customer.paid_orders:
            break
        time.sleep(0.5)
    assert customer.paid_orders == 2
    assert customer.paid_amount == Decimal("150.50")
    assert customer.last_order_at.isoformat() == "2026-06-01T02:00:00+00:00"
    assert Customer.objects.count() == 1

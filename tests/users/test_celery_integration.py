"""One flow end to end through a real Celery worker process on the configured
broker (Redis when REDIS_URL is set, the file-system broker otherwise)."""

import os
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from core.batch import validate_batch
from ops_site.celery import app
from users.models import Customer
from users.rows import OrderRow
from users.services import orders_upsert_batch

from .factories import CustomerFactory

ROOT = Path(__file__).resolve().parents[2]


def _database_url_for_worker() -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    port = f":{s['PORT']}" if s.get("PORT") else ""
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}{port}/{s['NAME']}"


@pytest.fixture
def worker_queue():
    """Starts `celery worker` as a separate process consuming a queue of its own."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DATABASE_URL": _database_url_for_worker(), "DJANGO_SETTINGS_MODULE": "ops_site.settings.test",
           "CELERY_DEFAULT_QUEUE": queue}
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "ops_site", "worker", "-Q", queue, "--pool", "solo",
         "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    old_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    try:
        yield queue
    finally:
        app.conf.task_default_queue = old_queue
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        if proc.returncode not in (0, -15, None):
            print(out)


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_order_batch_rolls_up_in_a_real_worker(worker_queue):
    customer = CustomerFactory()
    payload = {"items": [
        {"external_id": "w1", "customer": customer.external_id, "amount": "120.00", "occurred_at": "2026-05-01T10:00:00+08:00"},
        {"external_id": "w2", "customer": customer.external_id, "amount": "30.50", "occurred_at": "2026-06-01T10:00:00+08:00"},
        {"external_id": "w3", "customer": customer.external_id, "amount": "999.00", "status": "refunded",
         "occurred_at": "2026-06-02T10:00:00+08:00"},
    ]}
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

"""Sent once, never lost: a worker SIGKILLed in the middle of a 5,000-delivery dispatch
loses nothing, and only what it held in flight is handed over again, under its key."""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from django.utils import timezone

from campaigns.backends import read_log
from campaigns.models import Delivery
from campaigns.tasks import outbox_recover_task, outbox_send_task
from tests.conftest import _database_url_for_worker
from users.models import Customer

TOTAL = 5000
ROOT = Path(__file__).resolve().parents[2]


def _worker(queue: str, log_file: Path, var_dir: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url_for_worker(),
        "DJANGO_SETTINGS_MODULE": "ops_site.settings.test",
        "CELERY_DEFAULT_QUEUE": queue,
        "OPS_VAR_DIR": str(var_dir),
        "OPS_CHANNEL_PUSH": "log",
        "OPS_CHANNEL_LOG_FILE": str(log_file),
        # Slow enough (about 5 s for all) that the kill lands mid-dispatch.
        "OPS_CHANNEL_PUSH_RATE": "1000",
        "OPS_OUTBOX_BATCH": "100",
        "OPS_OUTBOX_LEASE_SECONDS": "2",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "ops_site", "worker", "-Q", queue, "--pool", "solo",
         "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_worker_killed_mid_dispatch_loses_nothing_and_resends_only_what_was_in_flight(tmp_path):
    from ops_site.celery import app

    now = timezone.now()
    Customer.objects.bulk_create(
        [Customer(external_id=f"k{n:05d}", consent_push=True) for n in range(TOTAL)], batch_size=1000
    )
    customers = list(Customer.objects.filter(external_id__startswith="k").values_list("pk", flat=True))
    Delivery.objects.bulk_create(
        [
            Delivery(key=f"kill:{pk}", customer_id=pk, channel="push", category="marketing", content="hello",
                     status="queued", due_at=now, send_after=now, planned_at=now)
            for pk in customers
        ],
        batch_size=1000,
    )  # fmt: skip
    log_file = tmp_path / "channel-log.jsonl"
    queue = f"test-kill-{uuid.uuid4().hex[:8]}"
    old_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    worker = _worker(queue, log_file, tmp_path)
    try:
        outbox_send_task.delay()
        # Kill it while it holds a claimed batch. Between two batches it holds none (the kill
        # would leave nothing to recover): then it is started again and killed again.
        in_flight: set[str] = set()
        for attempt in range(5):
            enough = 1000 + 600 * attempt
            _wait(
                lambda enough=enough: (
                    len(read_log(log_file)) >= enough and Delivery.objects.filter(status="sending").exists()
                ),
                120,
                "hand-overs with a batch in flight",
            )
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
            in_flight = set(Delivery.objects.filter(status="sending").values_list("key", flat=True))
            if in_flight:
                break
            worker = _worker(queue, log_file, tmp_path)
            outbox_send_task.delay()  # the dead one's message stays unacked on the broker
        handed_before = Counter(line["key"] for line in read_log(log_file))
        assert 0 < len(in_flight) <= 100  # one claimed batch at most
        assert len(handed_before) < TOTAL  # it really died mid-dispatch

        worker = _worker(queue, log_file, tmp_path)
        time.sleep(2.5)  # past the lease: the dead worker's claim is abandoned
        outbox_recover_task.delay()
        _wait(lambda: not Delivery.objects.exclude(status="sent").exists(), 180, "every delivery to be sent")
    finally:
        app.conf.task_default_queue = old_queue
        worker.kill()
        worker.wait(timeout=10)

    handed = Counter(line["key"] for line in read_log(log_file))
    assert set(handed) == {f"kill:{pk}" for pk in customers}  # every delivery handed over: none lost
    twice = {key for key, n in handed.items() if n > 1}
    assert twice <= in_flight and max(handed.values()) <= 2  # re-sent only what was in flight, once
    recovered = dict(Delivery.objects.filter(recovered__gt=0).values_list("key", "recovered"))
    assert set(recovered) == in_flight and set(recovered.values()) == {1}
    assert Delivery.objects.filter(status="sent").count() == TOTAL

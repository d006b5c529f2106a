"""One recompute at a time; a worker dying mid-run never hides the last good results."""

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from core.errors import ApplicationError, Conflict
from segments import selectors, services
from segments.models import AggregateStaging, CustomerScore, PredictionStaging, SegmentRun
from segments.recompute import full

from .factories import AS_OF, CustomerFactory, OrderFactory, ensure_rule_set, generate_history


@pytest.fixture
def first_run(db):
    generate_history(customers=80, orders=600, seed=5)
    return services.recompute_sync(as_of=AS_OF - timedelta(days=7))


def test_a_second_recompute_while_one_runs_is_a_conflict(first_run):
    running, ranges = services.recompute_start(as_of=AS_OF, chunk_size=20)
    assert len(ranges) >= 3 and running.status == SegmentRun.Status.RUNNING
    with pytest.raises(Conflict) as exc:
        services.recompute_start(as_of=AS_OF)
    assert exc.value.code == "recompute_running" and exc.value.status_code == 409
    with pytest.raises(Conflict):
        services.recompute_sync(as_of=AS_OF)
    assert SegmentRun.objects.filter(status=SegmentRun.Status.RUNNING).get() == running
    assert selectors.run_published() == first_run


def test_a_worker_killed_mid_run_leaves_the_previous_results_readable(first_run, api):
    score = CustomerScore.objects.filter(run=first_run, frequency__gt=0).select_related("customer").first()
    customer = score.customer
    before = api.get(f"/api/v1/customers/{customer.external_id}").json()
    assert before["rfm"]["frequency"] == score.frequency and before["stage"] == score.stage

    # A new run starts; one chunk is done, then the worker dies (nothing else happens).
    OrderFactory(customer=customer, amount=Decimal("777.00"), occurred_at=AS_OF - timedelta(days=1))
    dead, ranges = services.recompute_start(as_of=AS_OF, chunk_size=20)
    assert services.recompute_chunk(run_id=dead.pk, lo=ranges[0][0], hi=ranges[0][1]) > 0
    assert AggregateStaging.objects.filter(run_id=dead.pk).exists()

    assert selectors.run_published() == first_run
    assert selectors.customer_score(customer=customer).run_id == first_run.pk
    after = api.get(f"/api/v1/customers/{customer.external_id}")
    assert after.status_code == 200
    assert after.json()["rfm"] == before["rfm"] and after.json()["stage"] == before["stage"]
    listed = api.get("/api/v1/customers/", {"stage": score.stage, "page_size": 1000}).json()["results"]
    assert customer.external_id in {c["external_id"] for c in listed}

    # Before the stale timeout the dead run still blocks a new one ...
    with pytest.raises(Conflict):
        services.recompute_sync(as_of=AS_OF)
    # ... after it, the next run marks it failed, cleans its staging, and publishes.
    long_ago = timezone.now() - services.STALE_AFTER - timedelta(minutes=1)
    SegmentRun.objects.filter(pk=dead.pk).update(started_at=long_ago, heartbeat_at=long_ago)  # no progress since
    fresh = services.recompute_sync(as_of=AS_OF)
    dead.refresh_from_db()
    assert dead.status == SegmentRun.Status.FAILED and "abandoned" in dead.error
    assert not AggregateStaging.objects.filter(run_id=dead.pk).exists()
    assert fresh.status == SegmentRun.Status.PUBLISHED and selectors.run_published() == fresh
    assert api.get(f"/api/v1/customers/{customer.external_id}").json()["rfm"]["frequency"] == score.frequency + 1

    # The dead run's redelivered tasks change nothing.
    assert services.recompute_chunk(run_id=dead.pk, lo=ranges[1][0], hi=ranges[1][1]) == 0
    assert services.recompute_finish(run_id=dead.pk).status == SegmentRun.Status.FAILED
    assert not AggregateStaging.objects.filter(run_id=dead.pk).exists()
    assert selectors.run_published() == fresh


def test_a_failure_while_scoring_keeps_the_last_results(first_run, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(full, "score_run", broken)
    with pytest.raises(RuntimeError):
        services.recompute_sync(as_of=AS_OF)
    failed = SegmentRun.objects.exclude(pk=first_run.pk).get()
    assert failed.status == SegmentRun.Status.FAILED and "disk full" in failed.error
    assert not AggregateStaging.objects.filter(run_id=failed.pk).exists()
    assert not PredictionStaging.objects.filter(run_id=failed.pk).exists()
    assert not CustomerScore.objects.filter(run=failed).exists()
    assert selectors.run_published() == first_run
    # The failure does not block the next run.
    monkeypatch.undo()
    assert services.recompute_sync(as_of=AS_OF).status == SegmentRun.Status.PUBLISHED


def test_a_chunk_rerun_is_idempotent(first_run):
    run, ranges = services.recompute_start(as_of=AS_OF, chunk_size=20)
    for lo, hi in ranges:
        services.recompute_chunk(run_id=run.pk, lo=lo, hi=hi)
    rows = AggregateStaging.objects.filter(run_id=run.pk).count()
    services.recompute_chunk(run_id=run.pk, lo=ranges[0][0], hi=ranges[0][1])  # a redelivered task
    assert AggregateStaging.objects.filter(run_id=run.pk).count() == rows
    done = services.recompute_finish(run_id=run.pk)
    assert done.status == SegmentRun.Status.PUBLISHED
    assert CustomerScore.objects.filter(run=done).count() == rows


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_concurrent_recomputes_one_wins(monkeypatch):
    ensure_rule_set()
    for i in range(30):
        customer = CustomerFactory()
        OrderFactory(customer=customer, amount=Decimal(10 + i), occurred_at=AS_OF - timedelta(days=i))
    real_chunk = full.aggregate_chunk

    def slow_chunk(**kwargs):
        time.sleep(1.0)  # keep the winner busy while the other one tries to start
        return real_chunk(**kwargs)

    monkeypatch.setattr(full, "aggregate_chunk", slow_chunk)
    barrier = threading.Barrier(2)
    outcomes = []

    def work():
        try:
            barrier.wait()
            outcomes.append(services.recompute_sync(as_of=AS_OF))
        except ApplicationError as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    runs = [o for o in outcomes if isinstance(o, SegmentRun)]
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert len(runs) == 1 and len(errors) == 1, outcomes
    assert isinstance(errors[0], Conflict) and errors[0].code == "recompute_running"
    assert SegmentRun.objects.get().status == SegmentRun.Status.PUBLISHED
    assert selectors.run_published() == runs[0]
    assert CustomerScore.objects.filter(run=runs[0]).count() == 30

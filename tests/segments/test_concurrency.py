"""One recompute at a time; a worker dying mid-run never hides the last good results."""

import contextlib
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


# --- stale runs: no progress, not old age ---------------------------------------------------


def test_a_long_run_that_makes_progress_is_not_failed_as_stale(first_run):
    """A healthy full run longer than STALE_AFTER: its chunks keep its heartbeat fresh,
    so the next incremental run leaves it alone, and it finishes and publishes."""
    running, ranges = services.recompute_start(as_of=AS_OF, chunk_size=20)
    two_hours_ago = timezone.now() - timedelta(hours=2)
    assert timedelta(hours=2) > services.STALE_AFTER
    SegmentRun.objects.filter(pk=running.pk).update(started_at=two_hours_ago, heartbeat_at=two_hours_ago)
    services.recompute_chunk(run_id=running.pk, lo=ranges[0][0], hi=ranges[0][1])  # progress, just now
    running.refresh_from_db()
    assert running.heartbeat_at > timezone.now() - timedelta(minutes=1)

    assert services.recompute_incremental() == 0  # the full run is running: nothing to do
    running.refresh_from_db()
    assert running.status == SegmentRun.Status.RUNNING and running.error == ""
    for lo, hi in ranges[1:]:
        services.recompute_chunk(run_id=running.pk, lo=lo, hi=hi)
    assert services.recompute_finish(run_id=running.pk).status == SegmentRun.Status.PUBLISHED


def test_a_run_without_recent_progress_is_failed_as_stale(first_run):
    running, ranges = services.recompute_start(as_of=AS_OF, chunk_size=20)
    services.recompute_chunk(run_id=running.pk, lo=ranges[0][0], hi=ranges[0][1])
    no_progress_since = timezone.now() - services.STALE_AFTER - timedelta(minutes=1)
    SegmentRun.objects.filter(pk=running.pk).update(
        started_at=timezone.now() - timedelta(hours=2), heartbeat_at=no_progress_since
    )
    services.recompute_incremental()
    running.refresh_from_db()
    assert running.status == SegmentRun.Status.FAILED and "abandoned" in running.error
    assert not AggregateStaging.objects.filter(run_id=running.pk).exists()


def test_every_phase_records_progress(first_run):
    run, ranges = services.recompute_start(as_of=AS_OF, chunk_size=20)
    for lo, hi in ranges:
        services.recompute_chunk(run_id=run.pk, lo=lo, hi=hi)
    SegmentRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(days=1))
    finished = services.recompute_finish(run_id=run.pk)
    assert finished.heartbeat_at > timezone.now() - timedelta(minutes=1)


def test_a_run_failed_as_stale_does_not_publish_when_its_finish_arrives_late(first_run):
    """The stale check failed the run while its last task was still on its way: that
    finish must not overwrite FAILED with PUBLISHED nor replace the published results."""
    run, ranges = services.recompute_start(as_of=AS_OF, chunk_size=20)
    for lo, hi in ranges:
        services.recompute_chunk(run_id=run.pk, lo=lo, hi=hi)
    SegmentRun.objects.filter(pk=run.pk).update(status=SegmentRun.Status.FAILED, error="abandoned: no progress")
    with contextlib.suppress(ApplicationError):  # whether it raises or returns, nothing is published
        services.recompute_finish(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == SegmentRun.Status.FAILED
    assert selectors.run_published() == first_run


# --- the chunk task retries transient database failures ---------------------------------------


def test_the_chunk_task_retries_a_transient_database_failure(first_run, monkeypatch):
    from django.db import OperationalError

    from segments.tasks import segments_chunk_task

    run, ranges = services.recompute_start(as_of=AS_OF, chunk_size=20)
    real_chunk, calls = services.recompute_chunk, []

    def flaky_chunk(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real_chunk(**kwargs)

    monkeypatch.setattr(services, "recompute_chunk", flaky_chunk)
    result = segments_chunk_task.apply(args=(run.pk, *ranges[0]))
    assert len(calls) == 2
    assert result.get() > 0
    assert AggregateStaging.objects.filter(run_id=run.pk).exists()


def test_the_chunk_task_does_not_retry_a_bug(first_run, monkeypatch):
    from segments.tasks import segments_chunk_task

    run, ranges = services.recompute_start(as_of=AS_OF, chunk_size=20)
    calls = []

    def broken_chunk(**kwargs):
        calls.append(kwargs)
        raise ValueError("a bug")

    monkeypatch.setattr(services, "recompute_chunk", broken_chunk)
    with pytest.raises(ValueError):
        segments_chunk_task.apply(args=(run.pk, *ranges[0])).get()
    assert len(calls) == 1

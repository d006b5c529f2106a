"""The recompute's orchestration: runs (full, fanned out in chunks, or
incremental), their progress, publishing. The SQL of each phase is in
``segments.recompute``.

A full recompute:
  1. ``recompute_start`` creates the run (at most one runs at a time: a partial
     unique index on status = running), splits the customers into id ranges;
  2. ``recompute_chunk`` (one Celery task per range, on any worker) writes the
     range's order summary with one INSERT … SELECT;
  3. ``recompute_finish`` (the chord's join) fits the churn model on all buyers,
     scores everyone with window functions, and publishes in one transaction:
     stage changes, size snapshots, custom segment membership, run pointer.
Readers read the published run only, so they never see a half-done recompute;
a worker killed mid-run leaves the previous results in place.
"""

import logging
import math
import time
from contextlib import contextmanager
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ApplicationError, Conflict
from incentives import selectors as points_selectors
from users import selectors as users_selectors

from .. import rules
from ..models import SegmentRun
from ..recompute import full, incremental, maintenance, sql
from ..selectors import run_published as published_run
from .rule_sets import rule_set_active

logger = logging.getLogger(__name__)

# A running run with no progress (no phase or chunk finished) for this long is taken
# for abandoned (a killed worker) and failed by the next run. Progress, not age: a
# healthy full run may take longer than this in all.
STALE_AFTER = timedelta(minutes=getattr(settings, "OPS_SEGMENTS_STALE_MINUTES", 60))


def _heartbeat(run_id: int, **updates) -> None:
    """Records progress on the run (with any other column ``updates``)."""
    SegmentRun.objects.filter(pk=run_id).update(heartbeat_at=timezone.now(), **updates)


@contextmanager
def _phase(run: SegmentRun, name: str):
    started = time.monotonic()
    _heartbeat(run.pk)
    yield
    _heartbeat(
        run.pk, phases={**(SegmentRun.objects.get(pk=run.pk).phases or {}), name: round(time.monotonic() - started, 3)}
    )


def _fail_stale_runs() -> None:
    """Fails the running runs without progress for ``STALE_AFTER`` (a run from before
    heartbeats were recorded counts from its start). The rows are locked while they are
    judged: a heartbeat landing meanwhile waits, or is seen (PostgreSQL re-checks a
    locked row's condition), so a run that has just made progress is never failed."""
    with transaction.atomic():
        stale = list(
            SegmentRun.objects.select_for_update()
            .filter(status=SegmentRun.Status.RUNNING)
            .alias(progress_at=Coalesce("heartbeat_at", "started_at"))
            .filter(progress_at__lt=timezone.now() - STALE_AFTER)
            .values_list("pk", flat=True)
        )
        SegmentRun.objects.filter(pk__in=stale, status=SegmentRun.Status.RUNNING).update(
            status=SegmentRun.Status.FAILED, error="abandoned (no progress)", finished_at=timezone.now()
        )
    for run_id in stale:  # a killed worker never reached its own cleanup
        maintenance.staging_clear(run_id=run_id)


def recompute_start(
    *, as_of: datetime | None = None, chunk_size: int = 100_000
) -> tuple[SegmentRun, list[tuple[int, int]]]:
    """Validates, creates the run and returns it with the customer id ranges to aggregate."""
    now = timezone.now()
    as_of = as_of or now
    if as_of > now + timedelta(minutes=1):
        raise ApplicationError(
            _("The as-of date is in the future."), code="as_of_in_future", details={"as_of": as_of.isoformat()}
        )
    rule_set = rule_set_active()
    if not full.paid_orders_exist(as_of):
        raise ApplicationError(
            _("There are no paid orders up to the as-of date: nothing to score. The last results stay."),
            code="no_orders",
        )
    _fail_stale_runs()
    try:
        with transaction.atomic():
            run = SegmentRun.objects.create(as_of=as_of, rule_set=rule_set, heartbeat_at=timezone.now())
    except IntegrityError:
        raise Conflict(_("A recompute is already running."), code="recompute_running") from None
    lo, hi, _count = full.customer_id_bounds(as_of)
    n_chunks = max(1, math.ceil((hi - lo + 1) / chunk_size))
    step = math.ceil((hi - lo + 1) / n_chunks)
    ranges = [(lo + i * step, min(hi, lo + (i + 1) * step - 1)) for i in range(n_chunks)]
    SegmentRun.objects.filter(pk=run.pk).update(chunks_total=len(ranges))
    run.chunks_total = len(ranges)
    return run, ranges


def recompute_chunk(*, run_id: int, lo: int, hi: int) -> int:
    """One id range's order summary. Safe to run twice (the range is rewritten)."""
    run = SegmentRun.objects.select_related("rule_set").filter(pk=run_id, status=SegmentRun.Status.RUNNING).first()
    if run is None:
        return 0
    with transaction.atomic():
        rows = full.aggregate_chunk(run=run, window_days=run.rule_set.rfm_window_days, lo=lo, hi=hi)
    _heartbeat(run_id, chunks_done=F("chunks_done") + 1)
    return rows


def recompute_finish(*, run_id: int) -> SegmentRun:
    """Model, scores, publish. On any error the run is marked failed and the last
    published results stay in place."""
    run = SegmentRun.objects.select_related("rule_set").get(pk=run_id)
    if run.status != SegmentRun.Status.RUNNING:
        return run
    t = rules.Thresholds.of(run.rule_set)
    # Wall time of the fan-out (chunks on the workers) up to this join.
    SegmentRun.objects.filter(pk=run.pk).update(
        phases={**run.phases, "aggregate_wall": round((timezone.now() - run.started_at).total_seconds(), 3)}
    )
    try:
        with _phase(run, "model_fit"):
            previous = published_run()
            sql.analyze(sql.AGG)
            data = full.summary(run_id=run.pk)
            params = full.fit_model(data=data, fallback=previous.model_params if previous else None)
        SegmentRun.objects.filter(pk=run.pk).update(model_params=params)
        with _phase(run, "model_predict"):
            maintenance.predictions_clear(run_id=run.pk)
            full.predict(run_id=run.pk, data=data, params=params, horizon_days=run.rule_set.clv_horizon_days)
        del data
        with _phase(run, "score"):
            sql.analyze(sql.PRED)
            with transaction.atomic():
                sql.large_sorts_in_memory()
                maintenance.scores_delete(run_ids=[run.pk])
                scored = full.score_run(run=run, t=t)
            sql.analyze(sql.SCORE)
        with _phase(run, "publish"):
            _publish(run, counts={"customers": scored, "buyers": params["buyers"]})
    except Exception as exc:
        SegmentRun.objects.filter(pk=run.pk).update(
            status=SegmentRun.Status.FAILED, finished_at=timezone.now(), error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        logger.exception("segment recompute failed", extra={"run": run.pk})
        raise
    finally:
        maintenance.staging_clear(run_id=run.pk)
    run.refresh_from_db()
    return run


def _publish(run: SegmentRun, *, counts: dict) -> None:
    from .membership import segments_materialize

    with transaction.atomic():
        # Locked and re-read: a run failed meanwhile for lack of progress must not publish.
        if not SegmentRun.objects.select_for_update().filter(pk=run.pk, status=SegmentRun.Status.RUNNING).exists():
            raise ApplicationError("The run was failed meanwhile; nothing was published.", code="run_not_running")
        sql.large_sorts_in_memory()
        current = published_run()
        if current is not None and current.as_of > run.as_of:
            # A backfill of an earlier date: keep it as history, don't replace the newer results.
            previous = (
                SegmentRun.objects.filter(
                    status__in=[SegmentRun.Status.PUBLISHED, SegmentRun.Status.SUPERSEDED], as_of__lt=run.as_of
                )
                .order_by("-as_of")
                .first()
            )
            becomes_current = False
        else:
            previous, becomes_current = current, True
        counts["stage_changes"] = full.stage_changes_insert(run=run, previous=previous)
        full.size_snapshots_insert(run=run)
        if becomes_current:
            errors: dict[str, str] = {}
            counts["segment_changes"] = segments_materialize(run=run, errors=errors)
            if errors:  # skipped segments (a stored definition that cannot be evaluated): the admin's run page
                counts["segment_errors"] = errors
            SegmentRun.objects.filter(status=SegmentRun.Status.PUBLISHED).update(status=SegmentRun.Status.SUPERSEDED)
        SegmentRun.objects.filter(pk=run.pk).update(
            status=SegmentRun.Status.PUBLISHED if becomes_current else SegmentRun.Status.SUPERSEDED,
            published_at=timezone.now(),
            finished_at=timezone.now(),
            counts=counts,
        )


def recompute_sync(*, as_of: datetime | None = None, chunk_size: int = 100_000) -> SegmentRun:
    """The whole recompute in this process (``--sync``, tests, the embedded demo)."""
    run, ranges = recompute_start(as_of=as_of, chunk_size=chunk_size)
    try:
        with _phase(run, "aggregate"):
            for lo, hi in ranges:
                recompute_chunk(run_id=run.pk, lo=lo, hi=hi)
    except Exception:
        SegmentRun.objects.filter(pk=run.pk).update(status=SegmentRun.Status.FAILED, finished_at=timezone.now())
        maintenance.staging_clear(run_id=run.pk)
        raise
    return recompute_finish(run_id=run.pk)


def superseded_scores_cleanup(*, keep: int = 1) -> int:
    """Deletes the score rows of runs that are no longer current (history lives in
    StageChange and SegmentSizeSnapshot), then vacuums the score and staging tables:
    the nightly run's deletes and the day's incremental updates leave a million dead
    rows there, which the next run's inserts then reuse the space of."""
    current = published_run()
    old = list(
        SegmentRun.objects.exclude(pk=getattr(current, "pk", None))
        .exclude(status=SegmentRun.Status.RUNNING)
        .order_by("-as_of")
        .values_list("pk", flat=True)[max(0, keep - 1) :]
    )
    deleted = maintenance.scores_delete(run_ids=old)
    scores_vacuum()
    return deleted


def scores_vacuum() -> bool:
    """VACUUM (ANALYZE) of the score and staging tables (PostgreSQL, outside a transaction):
    after the nightly cleanup, and after each incremental run, whose rewritten rows leave
    tens of thousands of dead versions behind."""
    return maintenance.tables_vacuum()


def recompute_incremental(*, now: datetime | None = None) -> int:
    """Folds the customers whose orders changed since the last run into the published
    run, in one transaction: their summaries and predictions (with the published
    model's parameters, no refit), everyone's quintile scores, the labels of every
    row whose scores moved, stage changes and custom segment membership.

    Recency of untouched customers stays relative to the published as-of; the next
    full run realigns everyone. Custom segments are re-evaluated for the customers
    whose orders, profile, scores, points or events moved. Returns the number of
    re-aggregated customers."""
    from .membership import segments_materialize

    now = now or timezone.now()
    current = published_run()
    if current is None:
        return 0
    last = (
        SegmentRun.objects.exclude(status__in=[SegmentRun.Status.FAILED, SegmentRun.Status.RUNNING])
        .order_by("-started_at")
        .first()
    )
    since = last.started_at if last else current.started_at
    _fail_stale_runs()
    try:
        with transaction.atomic():
            run = SegmentRun.objects.create(
                kind=SegmentRun.Kind.INCREMENTAL, as_of=now, rule_set=current.rule_set, heartbeat_at=timezone.now()
            )
    except IntegrityError:
        return 0  # a full recompute is running; it will include these changes
    t = rules.Thresholds.of(current.rule_set)
    try:
        dirty = incremental.dirty_customer_ids(since=since)
        counts = {"dirty": len(dirty)}
        relabelled = np.empty(0, dtype=np.int64)
        if dirty:
            with _phase(run, "aggregate"):
                for start in range(0, len(dirty), 20_000):
                    full.aggregate_chunk(
                        run=run, window_days=t.rfm_window_days, customer_ids=dirty[start : start + 20_000]
                    )
            with _phase(run, "model_predict"):
                if current.model_params:
                    full.predict(
                        run_id=run.pk,
                        data=full.summary(run_id=run.pk),
                        params=current.model_params,
                        horizon_days=current.rule_set.clv_horizon_days,
                    )
        with transaction.atomic():
            if dirty:
                with _phase(run, "patch"):
                    sql.large_sorts_in_memory()
                    patched, relabelled = incremental.patch_published(
                        current=current, staging_run=run, t=t, dirty=dirty
                    )
                    counts |= patched
            # Custom segments, for the customers something happened to (see segments_materialize).
            with _phase(run, "custom_segments"):
                affected = np.concatenate(
                    [
                        relabelled,
                        *(
                            np.asarray(ids, dtype=np.int64)
                            for ids in (
                                dirty,
                                points_selectors.customers_with_entries_since(since=since),
                                users_selectors.customers_with_events_since(since=since),
                            )
                        ),
                    ]
                )
                if len(affected):
                    errors: dict[str, str] = {}
                    counts["segment_changes"] = segments_materialize(
                        run=current,
                        snapshot=False,
                        only=affected,
                        relabelled=relabelled if dirty else None,
                        errors=errors,
                    )
                    if errors:
                        counts["segment_errors"] = errors
            incremental.relabelled_drop()
        SegmentRun.objects.filter(pk=run.pk).update(
            status=SegmentRun.Status.APPLIED, finished_at=timezone.now(), counts=counts
        )
    except Exception as exc:
        SegmentRun.objects.filter(pk=run.pk).update(
            status=SegmentRun.Status.FAILED, finished_at=timezone.now(), error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        raise
    finally:
        maintenance.staging_clear(run_id=run.pk)
    return len(dirty)

"""Writes for the segments engine: recompute (full, fanned out in chunks, or
incremental), publishing, custom segments and their membership.

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
from django.utils import timezone

from core.errors import ApplicationError, Conflict
from core.services import audit_record
from incentives import selectors as points_selectors
from users import selectors as users_selectors

from . import engine, rules
from .models import RuleSet, SegmentRun
from .selectors import run_published as published_run

logger = logging.getLogger(__name__)

STALE_AFTER = timedelta(minutes=getattr(settings, "OPS_SEGMENTS_STALE_MINUTES", 60))


def rule_set_active() -> RuleSet:
    rule_set = RuleSet.objects.filter(is_active=True).order_by("-version").first()
    if rule_set is None:
        raise ApplicationError("No active segment rule set: add one in the admin.", code="no_rule_set")
    return rule_set


def rule_set_save_new_version(*, base: RuleSet, changes: dict, actor=None, note: str = "") -> RuleSet:
    """Saves an edit as a new version (old versions stay, so every score keeps its rules)."""
    # Every rule field is copied, not only the thresholds (e.g. the CLV horizon).
    rule_fields = [f.name for f in RuleSet._meta.concrete_fields
                   if f.name not in ("id", "version", "is_active", "note", "created_at", "created_by")]
    fields = {f: getattr(base, f) for f in rule_fields}
    unknown = set(changes) - set(rule_fields)
    if unknown:
        raise ApplicationError(f"Unknown rule field(s): {sorted(unknown)}.", code="invalid_rule_set")
    fields.update(changes)
    candidate = RuleSet(**fields, note=note or base.note)
    errors = rules.validate_rule_set(candidate)
    if errors:
        raise ApplicationError("The rule set makes no sense.", code="invalid_rule_set", details=errors)
    with transaction.atomic():
        last = RuleSet.objects.select_for_update().order_by("-version").first()
        candidate.version = (last.version if last else 0) + 1
        candidate.created_by = actor if getattr(actor, "pk", None) else None
        candidate.save()
        RuleSet.objects.exclude(pk=candidate.pk).update(is_active=False)
        audit_record(actor=actor, action="segments.rule_set.new_version", obj=candidate,
                     changes={k: [str(getattr(base, k)), str(v)] for k, v in changes.items() if getattr(base, k) != v})
    return candidate


@contextmanager
def _phase(run: SegmentRun, name: str):
    started = time.monotonic()
    yield
    SegmentRun.objects.filter(pk=run.pk).update(phases={**(SegmentRun.objects.get(pk=run.pk).phases or {}),
                                                        name: round(time.monotonic() - started, 3)})


def _fail_stale_runs() -> None:
    stale = list(SegmentRun.objects.filter(status=SegmentRun.Status.RUNNING, started_at__lt=timezone.now() - STALE_AFTER)
                 .values_list("pk", flat=True))
    SegmentRun.objects.filter(pk__in=stale, status=SegmentRun.Status.RUNNING).update(
        status=SegmentRun.Status.FAILED, error="abandoned (no progress)", finished_at=timezone.now()
    )
    for run_id in stale:  # a killed worker never reached its own cleanup
        engine.stages_clear(run_id=run_id)


def recompute_start(*, as_of: datetime | None = None, chunk_size: int = 100_000) -> tuple[SegmentRun, list[tuple[int, int]]]:
    """Validates, creates the run and returns it with the customer id ranges to aggregate."""
    now = timezone.now()
    as_of = as_of or now
    if as_of > now + timedelta(minutes=1):
        raise ApplicationError("The as-of date is in the future.", code="as_of_in_future", details={"as_of": as_of.isoformat()})
    rule_set = rule_set_active()
    if not engine.paid_orders_exist(as_of):
        raise ApplicationError("There are no paid orders up to the as-of date: nothing to score. The last results stay.",
                               code="no_orders")
    _fail_stale_runs()
    try:
        with transaction.atomic():
            run = SegmentRun.objects.create(as_of=as_of, rule_set=rule_set)
    except IntegrityError:
        raise Conflict("A recompute is already running.", code="recompute_running") from None
    lo, hi, _count = engine.customer_id_bounds(as_of)
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
        rows = engine.aggregate_chunk(run=run, window_days=run.rule_set.rfm_window_days, lo=lo, hi=hi)
    SegmentRun.objects.filter(pk=run_id).update(chunks_done=F("chunks_done") + 1)
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
        phases={**run.phases, "aggregate_wall": round((timezone.now() - run.started_at).total_seconds(), 3)})
    try:
        with _phase(run, "model_fit"):
            previous = published_run()
            engine.analyze(engine.AGG)
            data = engine.summary(run_id=run.pk)
            params = engine.fit_model(data=data, fallback=previous.model_params if previous else None)
        SegmentRun.objects.filter(pk=run.pk).update(model_params=params)
        with _phase(run, "model_predict"):
            engine.predictions_clear(run_id=run.pk)
            engine.predict(run_id=run.pk, data=data, params=params, horizon_days=run.rule_set.clv_horizon_days)
        del data
        with _phase(run, "score"):
            engine.analyze(engine.PRED)
            with transaction.atomic():
                engine.large_sorts_in_memory()
                engine.scores_delete(run_ids=[run.pk])
                scored = engine.score_run(run=run, t=t)
            engine.analyze(engine.SCORE)
        with _phase(run, "publish"):
            _publish(run, counts={"customers": scored, "buyers": params["buyers"]})
    except Exception as exc:
        SegmentRun.objects.filter(pk=run.pk).update(status=SegmentRun.Status.FAILED, finished_at=timezone.now(),
                                                     error=f"{type(exc).__name__}: {exc}"[:2000])
        logger.exception("segment recompute failed", extra={"run": run.pk})
        raise
    finally:
        engine.stages_clear(run_id=run.pk)
    run.refresh_from_db()
    return run


def _publish(run: SegmentRun, *, counts: dict) -> None:
    from .membership import segments_materialize

    with transaction.atomic():
        engine.large_sorts_in_memory()
        current = published_run()
        if current is not None and current.as_of > run.as_of:
            # A backfill of an earlier date: keep it as history, don't replace the newer results.
            previous = SegmentRun.objects.filter(status__in=[SegmentRun.Status.PUBLISHED, SegmentRun.Status.SUPERSEDED],
                                                 as_of__lt=run.as_of).order_by("-as_of").first()
            becomes_current = False
        else:
            previous, becomes_current = current, True
        counts["stage_changes"] = engine.stage_changes_insert(run=run, previous=previous)
        engine.size_snapshots_insert(run=run)
        if becomes_current:
            counts["segment_changes"] = segments_materialize(run=run)
            SegmentRun.objects.filter(status=SegmentRun.Status.PUBLISHED).update(status=SegmentRun.Status.SUPERSEDED)
        SegmentRun.objects.filter(pk=run.pk).update(
            status=SegmentRun.Status.PUBLISHED if becomes_current else SegmentRun.Status.SUPERSEDED,
            published_at=timezone.now(), finished_at=timezone.now(), counts=counts,
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
        engine.stages_clear(run_id=run.pk)
        raise
    return recompute_finish(run_id=run.pk)


def superseded_scores_cleanup(*, keep: int = 1) -> int:
    """Deletes the score rows of runs that are no longer current (history lives in
    StageChange and SegmentSizeSnapshot), then vacuums the score and staging tables:
    the nightly run's deletes and the day's incremental updates leave a million dead
    rows there, which the next run's inserts then reuse the space of."""
    current = published_run()
    old = list(SegmentRun.objects.exclude(pk=getattr(current, "pk", None)).exclude(status=SegmentRun.Status.RUNNING)
               .order_by("-as_of").values_list("pk", flat=True)[max(0, keep - 1):])
    deleted = engine.scores_delete(run_ids=old)
    scores_vacuum()
    return deleted


def scores_vacuum() -> bool:
    """VACUUM (ANALYZE) of the score and staging tables (PostgreSQL, outside a transaction):
    after the nightly cleanup, and after each incremental run, whose rewritten rows leave
    tens of thousands of dead versions behind."""
    return engine.vacuum(engine.SCORE, engine.AGG, engine.PRED)



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
    last = SegmentRun.objects.exclude(status__in=[SegmentRun.Status.FAILED, SegmentRun.Status.RUNNING]).order_by("-started_at").first()
    since = last.started_at if last else current.started_at
    _fail_stale_runs()
    try:
        with transaction.atomic():
            run = SegmentRun.objects.create(kind=SegmentRun.Kind.INCREMENTAL, as_of=now, rule_set=current.rule_set)
    except IntegrityError:
        return 0  # a full recompute is running; it will include these changes
    t = rules.Thresholds.of(current.rule_set)
    try:
        dirty = engine.dirty_customer_ids(since=since)
        counts = {"dirty": len(dirty)}
        relabelled = np.empty(0, dtype=np.int64)
        if dirty:
            with _phase(run, "aggregate"):
                for start in range(0, len(dirty), 20_000):
                    engine.aggregate_chunk(run=run, window_days=t.rfm_window_days, customer_ids=dirty[start:start + 20_000])
            with _phase(run, "model_predict"):
                if current.model_params:
                    engine.predict(run_id=run.pk, data=engine.summary(run_id=run.pk), params=current.model_params,
                                   horizon_days=current.rule_set.clv_horizon_days)
        with transaction.atomic():
            if dirty:
                with _phase(run, "patch"):
                    engine.large_sorts_in_memory()
                    patched, relabelled = engine.patch_published(current=current, stage_run=run, t=t, dirty=dirty)
                    counts |= patched
            # Custom segments, for the customers something happened to (see segments_materialize).
            with _phase(run, "custom_segments"):
                affected = np.concatenate([relabelled, *(np.asarray(ids, dtype=np.int64) for ids in (
                    dirty, points_selectors.customers_with_entries_since(since=since),
                    users_selectors.customers_with_events_since(since=since)))])
                if len(affected):
                    counts["segment_changes"] = segments_materialize(
                        run=current, snapshot=False, only=affected, relabelled=relabelled if dirty else None)
            engine.relabelled_drop()
        SegmentRun.objects.filter(pk=run.pk).update(status=SegmentRun.Status.APPLIED, finished_at=timezone.now(), counts=counts)
    except Exception as exc:
        SegmentRun.objects.filter(pk=run.pk).update(status=SegmentRun.Status.FAILED, finished_at=timezone.now(),
                                                     error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    finally:
        engine.stages_clear(run_id=run.pk)
    return len(dirty)

"""Thin Celery tasks for the recompute. The fan-out is a chord: one task per
customer id range, joined by the finish task (model, scores, publish)."""

from datetime import datetime

from celery import chord, shared_task
from django.db import InterfaceError, OperationalError

from core.errors import ApplicationError

from . import services


@shared_task(name="segments.recompute")
def segments_recompute_task(as_of: str | None = None, chunk_size: int = 100_000) -> int | None:
    """Nightly entry point. Returns the run id, or None when one is already running."""
    try:
        run, ranges = services.recompute_start(
            as_of=datetime.fromisoformat(as_of) if as_of else None, chunk_size=chunk_size
        )
    except ApplicationError as exc:
        if exc.code in ("recompute_running", "no_orders"):
            return None
        raise
    chord(segments_chunk_task.s(run.pk, lo, hi) for lo, hi in ranges)(segments_finish_task.s(run.pk))
    return run.pk


# Transient database failures (a dropped connection, a deadlock or serialization
# failure — psycopg reports these as OperationalError; a closed connection as
# InterfaceError) are retried: up to 3 times, 5 s apart. Anything else fails the
# chunk, and with it the chord, at once.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)


@shared_task(
    name="segments.recompute_chunk",
    acks_late=True,
    autoretry_for=TRANSIENT_ERRORS,
    max_retries=3,
    default_retry_delay=5,
)
def segments_chunk_task(run_id: int, lo: int, hi: int) -> int:
    """Idempotent (the range is rewritten in one transaction), so a retry or a
    redelivery after a worker dies is safe."""
    return services.recompute_chunk(run_id=run_id, lo=lo, hi=hi)


@shared_task(name="segments.recompute_finish")
def segments_finish_task(_chunk_rows, run_id: int) -> int:
    run = services.recompute_finish(run_id=run_id)
    segments_cleanup_task.delay()
    return run.pk


@shared_task(name="segments.recompute_incremental")
def segments_recompute_incremental_task() -> int:
    changed = services.recompute_incremental()
    if changed:  # housekeeping once the results are published, not before
        services.scores_vacuum()
    return changed


@shared_task(name="segments.cleanup")
def segments_cleanup_task() -> int:
    return services.superseded_scores_cleanup()

"""The health jobs: thin calls into ``communities.services.health``, recorded as job
runs (the dashboard's "Last job runs"); a job already running is not started twice."""

from datetime import date, timedelta

from celery import shared_task

from core.services import JobAlreadyRunning, job_run

from ..services import health

NIGHTLY = "communities.health_rollup_nightly"
RANGE = "communities.health_rollup_range"


@shared_task(name=NIGHTLY)
def health_rollup_nightly_task() -> None:
    """Rolls up yesterday (the operators' day that just ended) for every group."""
    yesterday = health.operator_today() - timedelta(days=1)
    try:
        with job_run(NIGHTLY) as run:
            run.counts["day"] = yesterday.isoformat()
            run.counts["rows"] = health.health_rollup(yesterday, yesterday)
    except JobAlreadyRunning:
        return


@shared_task(name=RANGE)
def health_rollup_range_task(day_from: str, day_to: str, group_ids: list[int] | None = None) -> None:
    """Rolls up a range of days (ISO dates) on demand, for the given groups or all.
    Idempotent: a re-run writes the same rows."""
    start, end = date.fromisoformat(day_from), date.fromisoformat(day_to)
    try:
        with job_run(RANGE) as run:
            run.counts.update({"day_from": day_from, "day_to": day_to, "groups": len(group_ids or []) or "all"})
            run.counts["rows"] = health.health_rollup(start, end, group_ids=group_ids)
    except JobAlreadyRunning:
        return

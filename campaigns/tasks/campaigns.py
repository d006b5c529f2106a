"""The campaign jobs: the minute tick (what is due), an occurrence's dispatch (its
chunks) and a chunk's write. Chunk writes are idempotent (keyed deliveries, a chunk
done once), so they are ``acks_late``: a worker killed mid-chunk leaves it to run again."""

from datetime import datetime

from celery import shared_task

from core.services import JobAlreadyRunning, job_run

from ..services import dispatch, schedule

TICK = "campaigns.tick"


@shared_task(name="campaigns.dispatch")
def campaign_dispatch_task(
    campaign_id: int, occurrence: str, due: str | None = None, customer_ids: list[int] | None = None
) -> int:
    """Starts an occurrence and queues its chunks; returns how many."""
    from django.utils import timezone

    at = datetime.fromisoformat(due) if due else timezone.now()
    chunk_ids = dispatch.occurrence_start(
        campaign_id=campaign_id, occurrence=occurrence, due=at, customer_ids=customer_ids
    )
    for chunk_id in chunk_ids:
        campaign_chunk_task.delay(chunk_id)
    return len(chunk_ids)


@shared_task(name="campaigns.chunk", acks_late=True, reject_on_worker_lost=True)
def campaign_chunk_task(chunk_id: int) -> int:
    return dispatch.write_chunk(chunk_id=chunk_id)


@shared_task(name="campaigns.resume")
def campaign_resume_task(campaign_id: int) -> int:
    """A campaign launched again after a pause: its unwritten chunks go now."""
    chunk_ids = dispatch.chunks_pending(campaign_id=campaign_id)
    for chunk_id in chunk_ids:
        campaign_chunk_task.delay(chunk_id)
    return len(chunk_ids)


@shared_task(name=TICK)
def campaigns_tick_task() -> None:
    """Every minute: dispatches what is due and completes what is done."""
    try:
        with job_run(TICK, lock_seconds=300) as run:
            due = schedule.due_now()
            for item in due:
                campaign_dispatch_task.delay(item.campaign_id, item.occurrence, item.due.isoformat(), item.customer_ids)
            run.counts.update({"due": len(due), "completed": dispatch.campaigns_complete()})
    except JobAlreadyRunning:
        return

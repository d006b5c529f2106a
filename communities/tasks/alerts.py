"""The alerts jobs: the keyword scan right after ingestion."""

from celery import shared_task

from core.services import SideEffectTask, ids_apply_isolating_failures

from ..services import alerts as services


@shared_task(name="communities.messages_scan", base=SideEffectTask)
def messages_scan_task(message_ids: list[int]) -> int:
    """Queued on commit by the message ingestion with the new messages' ids. Idempotent
    (an alert is once per message and rule), so it is acked late and retried; a batch of
    ids that keeps failing is recorded and the others still scan."""
    return ids_apply_isolating_failures(
        "communities.messages_scan", message_ids, lambda ids: services.messages_scan(message_ids=ids)
    )

"""The senders and the sweep.

``outbox_send_task`` drains what is due, batch by batch; it is safe to run any number
at once (claims skip each other's rows) and to run twice. It is ``acks_late`` with
``reject_on_worker_lost``: a worker killed mid-batch leaves its message to be delivered
again, and its claimed rows to ``outbox_recover_task``, which re-queues a claim older
than the lease.
"""

from celery import shared_task

from ..services import outbox, results
from ..services.unsubscribe import contact_state_unsubscribed

SEND = "campaigns.outbox_send"
RECOVER = "campaigns.outbox_recover"


@shared_task(name=SEND, acks_late=True, reject_on_worker_lost=True)
def outbox_send_task(delivery_ids: list[int] | None = None, max_batches: int = 1000) -> dict:
    """Hands over every due delivery (the ids that queued it are only a hint: whatever is
    due goes, oldest first)."""
    counts = outbox.outbox_drain(max_batches=max_batches)
    return {"sent": counts.sent, "retry": counts.retry, "failed": counts.failed}


@shared_task(name=RECOVER)
def outbox_recover_task() -> int:
    """Re-queues claims whose worker died, then drains what is due (deferred sends whose
    time came, retries whose back-off ran out)."""
    recovered = outbox.outbox_recover()
    outbox_send_task.delay()
    return recovered


@shared_task(name="campaigns.contact_state_unsubscribed")
def contact_state_unsubscribed_task(customer_id: int, channels: list[str]) -> None:
    contact_state_unsubscribed(customer_id=customer_id, channels=channels)


@shared_task(name="campaigns.conversions_attribute")
def conversions_attribute_task(order_ids: list[int]) -> int:
    return results.conversions_attribute(order_ids=order_ids)

"""Campaigns' Celery tasks (thin: ids in, one service call)."""

from .campaigns import (  # noqa: F401
    campaign_chunk_task,
    campaign_dispatch_task,
    campaign_resume_task,
    campaigns_tick_task,
)
from .outbox import contact_state_unsubscribed_task, outbox_recover_task, outbox_send_task  # noqa: F401


def customer_unsubscribed_record(*, customer_id: int, channels: list[str]) -> None:
    """``users.hooks.customer_unsubscribed`` subscriber (wired in ``console.apps``)."""
    contact_state_unsubscribed_task.delay_on_commit(customer_id, channels)

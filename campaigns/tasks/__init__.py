"""Campaigns' Celery tasks (thin: ids in, one service call)."""

from .campaigns import (  # noqa: F401
    campaign_chunk_task,
    campaign_dispatch_task,
    campaign_resume_task,
    campaigns_tick_task,
)
from .outbox import contact_state_unsubscribed_task, conversions_attribute_task, outbox_recover_task, outbox_send_task  # noqa: F401


def customer_unsubscribed_record(*, customer_id: int, channels: list[str]) -> None:
    """``users.hooks.customer_unsubscribed`` subscriber (wired in ``console.apps``)."""
    contact_state_unsubscribed_task.delay_on_commit(customer_id, channels)


def orders_changed_attribute(*, customer_ids: list[int], order_ids: list[int]) -> None:
    """``users.hooks.orders_changed`` subscriber: credits conversions after the commit."""
    conversions_attribute_task.delay_on_commit(order_ids)

"""Campaigns' Celery tasks (thin: ids in, one service call)."""

from .outbox import contact_state_unsubscribed_task, outbox_recover_task, outbox_send_task  # noqa: F401


def customer_unsubscribed_record(*, customer_id: int, channels: list[str]) -> None:
    """``users.hooks.customer_unsubscribed`` subscriber (wired in ``console.apps``)."""
    contact_state_unsubscribed_task.delay_on_commit(customer_id, channels)

from celery import shared_task

from core.services import JobAlreadyRunning, SideEffectTask, ids_apply_isolating_failures, job_run

from . import services


@shared_task(name="users.customer_order_stats_refresh", base=SideEffectTask)
def customer_order_stats_refresh_task(customer_ids: list[int]) -> int:
    """Idempotent: recomputes the roll-up from the orders, so a rerun changes nothing.
    A customer whose rows make the roll-up raise is skipped (and recorded), not the batch."""
    return ids_apply_isolating_failures(
        "users.customer_order_stats_refresh",
        customer_ids,
        lambda ids: services.customer_order_stats_refresh(customer_ids=ids),
    )


@shared_task(name="users.customer_order_stats_refresh_all")
def customer_order_stats_refresh_all_task() -> None:
    try:
        with job_run("users.order_stats_refresh_all") as run:
            run.counts["customers"] = services.customer_order_stats_refresh()
    except JobAlreadyRunning:
        return

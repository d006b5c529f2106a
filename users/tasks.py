from celery import shared_task

from core.services import JobAlreadyRunning, job_run

from . import services


@shared_task(name="users.customer_order_stats_refresh", acks_late=True)
def customer_order_stats_refresh_task(customer_ids: list[int]) -> int:
    """Idempotent: recomputes the roll-up from the orders, so a rerun changes nothing."""
    return services.customer_order_stats_refresh(customer_ids=customer_ids)


@shared_task(name="users.customer_order_stats_refresh_all")
def customer_order_stats_refresh_all_task() -> None:
    try:
        with job_run("users.order_stats_refresh_all") as run:
            run.counts["customers"] = services.customer_order_stats_refresh()
    except JobAlreadyRunning:
        return

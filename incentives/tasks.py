from celery import shared_task

from core.services import JobAlreadyRunning, job_run

from . import services


@shared_task(name="incentives.order_rules_apply", acks_late=True)
def order_rules_apply_task(order_ids: list[int]) -> int:
    """Idempotent: every rule entry has a deterministic idempotency key."""
    return services.order_rules_apply(order_ids=order_ids)


@shared_task(name="incentives.event_rules_apply", acks_late=True)
def event_rules_apply_task(event_ids: list[int]) -> int:
    return services.event_rules_apply(event_ids=event_ids)


@shared_task(name="incentives.points_expire")
def points_expire_task() -> None:
    try:
        with job_run("incentives.points_expire") as run:
            run.counts["expired_accounts"] = services.points_expire()
    except JobAlreadyRunning:
        return


@shared_task(name="incentives.levels_refresh")
def levels_refresh_task() -> None:
    try:
        with job_run("incentives.levels_refresh") as run:
            run.counts["level_changes"] = services.levels_update(recompute_growth=True)
    except JobAlreadyRunning:
        return

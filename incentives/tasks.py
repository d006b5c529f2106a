from celery import shared_task

from core.services import JobAlreadyRunning, SideEffectTask, ids_apply_isolating_failures, job_run

from . import services
from .models import RULE_EVENT_TYPES


@shared_task(name="incentives.order_rules_apply", base=SideEffectTask)
def order_rules_apply_task(order_ids: list[int]) -> int:
    """Idempotent: every rule entry has a deterministic idempotency key. An order that
    makes the rules raise is skipped (and recorded); the batch's others still pay."""
    return ids_apply_isolating_failures(
        "incentives.order_rules_apply", order_ids, lambda ids: services.order_rules_apply(order_ids=ids)
    )


@shared_task(name="incentives.event_rules_apply", base=SideEffectTask)
def event_rules_apply_task(event_ids: list[int]) -> int:
    return ids_apply_isolating_failures(
        "incentives.event_rules_apply", event_ids, lambda ids: services.event_rules_apply(event_ids=ids)
    )


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


# Subscribers to the users app's hooks (wired by console.apps): they run inside the
# writer's transaction and only queue the tasks above for after its commit.


def orders_changed_queue_rules(*, customer_ids: list[int], order_ids: list[int]) -> None:
    """Pays (or reverses) the purchase points of orders that changed."""
    order_rules_apply_task.delay_on_commit(order_ids)


def events_appended_queue_rules(*, event_ids_by_type: dict[str, list[int]]) -> None:
    """Pays the earning rules new events trigger; events of other types are not queued."""
    ids = sorted(i for event_type in set(RULE_EVENT_TYPES.values()) for i in event_ids_by_type.get(event_type, []))
    if ids:
        event_rules_apply_task.delay_on_commit(ids)

"""Class 2 of issue 9: one row the rules cannot process must not cost the batch's
other rows their points, and the failure must be visible and re-runnable."""

from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.db import OperationalError

from core.models import JobRun
from core.services import SideEffectTask
from incentives import tasks
from incentives.models import PointsAccount
from ops_site.celery import app as celery_app
from tests.queued import run_queued
from users import tasks as users_tasks

from .factories import CustomerFactory, EventFactory, OrderFactory, seed_defaults

pytestmark = pytest.mark.django_db

# A row stored before the API refused such instants: in Shanghai time it is past year 9999,
# so converting it to the customer's local day raises OverflowError.
NEVER = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _defaults():
    seed_defaults()


def _balance(customer) -> int:
    account = PointsAccount.objects.filter(customer=customer).first()
    return account.balance if account else 0


def test_a_poison_order_is_skipped_recorded_and_the_good_order_pays():
    good = OrderFactory(customer=CustomerFactory(timezone="Asia/Shanghai"), amount="120.00")
    bad = OrderFactory(customer=CustomerFactory(timezone="Asia/Shanghai"), occurred_at=NEVER)
    others = [OrderFactory(amount="10.00") for _ in range(5)]
    ids = [good.pk, bad.pk, *(o.pk for o in others)]

    assert tasks.order_rules_apply_task(ids) == 6  # did not raise
    assert _balance(good.customer) == 120
    assert all(_balance(o.customer) == 10 for o in others)
    run = JobRun.objects.get(job="incentives.order_rules_apply")
    assert run.status == JobRun.Status.FAILED
    assert run.counts["failed_ids"] == [bad.pk]
    assert run.counts["applied"] == 6 and run.counts["ids"] == 7
    assert f"{bad.pk}: OverflowError" in run.error


def test_a_poison_event_is_skipped_and_the_good_checkin_pays():
    customer = CustomerFactory(timezone="Asia/Shanghai")
    good = EventFactory(customer=customer, type="checkin", occurred_at=datetime(2026, 3, 1, 10, tzinfo=UTC))
    bad = EventFactory(customer=CustomerFactory(timezone="Asia/Shanghai"), type="checkin", occurred_at=NEVER)

    assert tasks.event_rules_apply_task([bad.pk, good.pk]) >= 1
    assert _balance(customer) > 0
    assert JobRun.objects.get(job="incentives.event_rules_apply").counts["failed_ids"] == [bad.pk]


def test_a_clean_batch_leaves_no_job_record():
    order = OrderFactory(amount="50.00")
    assert tasks.order_rules_apply_task([order.pk]) == 1
    assert users_tasks.customer_order_stats_refresh_task([order.customer_id]) == 1
    assert not JobRun.objects.exists()


def test_failed_rows_can_be_requeued_once_fixed(django_capture_on_commit_callbacks):
    bad = OrderFactory(customer=CustomerFactory(timezone="Asia/Shanghai"), occurred_at=NEVER, amount="30.00")
    tasks.order_rules_apply_task([bad.pk])
    assert _balance(bad.customer) == 0
    type(bad).objects.filter(pk=bad.pk).update(occurred_at=datetime(2026, 3, 1, tzinfo=UTC))  # the data fixed

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        call_command("jobs_requeue_failed")
    assert run_queued(callbacks) == {"incentives.order_rules_apply": [([bad.pk],)]}
    assert _balance(bad.customer) == 30
    run = JobRun.objects.get(job="incentives.order_rules_apply")
    assert run.counts["requeued_at"]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        call_command("jobs_requeue_failed")  # each failed run is re-queued once
    assert not callbacks


@celery_app.task(base=SideEffectTask, name="tests.side_effect_boom", max_retries=1, retry_backoff=False)
def _boom(ids: list[int]) -> int:
    _boom_calls.append(ids)
    raise OperationalError("server closed the connection unexpectedly")


_boom_calls: list = []


def test_a_task_that_fails_as_a_whole_is_retried_then_leaves_a_failed_record(settings):
    settings.CELERY_TASK_EAGER_PROPAGATES = False
    _boom_calls.clear()
    result = _boom.apply(args=[[4, 5]])
    assert result.failed()
    assert len(_boom_calls) == 2  # the first try and one retry: a transient error is retried
    run = JobRun.objects.get(job="tests.side_effect_boom")
    assert run.status == JobRun.Status.FAILED
    assert run.counts["failed_ids"] == [4, 5]
    assert "OperationalError" in run.error


def test_the_admin_action_requeues_failed_rows(admin_client, django_capture_on_commit_callbacks):
    bad = OrderFactory(customer=CustomerFactory(timezone="Asia/Shanghai"), occurred_at=NEVER, amount="30.00")
    tasks.order_rules_apply_task([bad.pk])
    run = JobRun.objects.get(job="incentives.order_rules_apply")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(
            "/admin/core/jobrun/", {"action": "requeue_failed", "_selected_action": [run.pk]}, follow=True
        )
    assert response.status_code == 200
    assert run_queued(callbacks) == {"incentives.order_rules_apply": [([bad.pk],)]}

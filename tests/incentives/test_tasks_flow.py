"""Ingestion through the public API queues the rule tasks on commit; the worker pays.

The on-commit callbacks are captured, not executed (they would go to the broker):
the test checks the request queued the right task with the right ids and wrote no
points, then runs the task function itself, as the worker would."""

from datetime import UTC, datetime, timedelta

import pytest

from incentives import tasks
from incentives.models import CustomerBadge, PointsAccount, PointsEntry

from .factories import seed_defaults

pytestmark = pytest.mark.django_db

DAY0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _defaults():
    seed_defaults()


def _ingest(api, capture, path, items):
    """Posts a batch; returns the ids each incentives task was queued with."""
    with capture(execute=False) as callbacks:
        r = api.post(path, {"items": items}, format="json")
    assert r.status_code == 200, r.content
    assert not r.json()["errors"]
    queued = {}
    for cb in callbacks:
        for task in (tasks.event_rules_apply_task, tasks.order_rules_apply_task):
            if getattr(cb, "func", None) == task.delay:
                queued.setdefault(task.name, []).extend(cb.args[0])
    return queued


def _customers(api, *rows):
    r = api.post("/api/v1/customers/batch", {"items": list(rows)}, format="json")
    assert r.status_code == 200 and not r.json()["errors"], r.content


def _balance(external_id):
    account = PointsAccount.objects.filter(customer__external_id=external_id).first()
    return account.balance if account else 0


def test_checkins_pay_in_the_worker_not_in_the_request(api, django_capture_on_commit_callbacks):
    _customers(api, {"external_id": "u1", "timezone": "UTC"})
    items = [
        {
            "customer": "u1",
            "type": "checkin",
            "occurred_at": (DAY0 + timedelta(days=d)).isoformat(),
            "external_id": f"ci-{d}",
        }
        for d in range(7)
    ]
    items.append({"customer": "u1", "type": "login", "occurred_at": DAY0.isoformat()})
    queued = _ingest(api, django_capture_on_commit_callbacks, "/api/v1/events/batch", items)
    ids = queued["incentives.event_rules_apply"]
    assert len(ids) == 7  # the login triggers no rule and is not queued
    assert not PointsEntry.objects.exists()  # the request wrote no points
    assert tasks.event_rules_apply_task(ids) == 8  # 7 check-ins + the 7-day streak bonus
    assert tasks.event_rules_apply_task(ids) == 0  # safe to run twice
    assert _balance("u1") == 7 * 10 + 50
    # the same batch again stores no event and queues nothing new
    again = _ingest(api, django_capture_on_commit_callbacks, "/api/v1/events/batch", items)
    assert again.get("incentives.event_rules_apply", []) == []
    assert _balance("u1") == 120


def test_order_paid_then_refunded(api, django_capture_on_commit_callbacks):
    _customers(api, {"external_id": "u1"})
    order = {
        "external_id": "o-1",
        "customer": "u1",
        "amount": "199.99",
        "status": "paid",
        "occurred_at": DAY0.isoformat(),
    }
    ids = _ingest(api, django_capture_on_commit_callbacks, "/api/v1/orders/batch", [order])[
        "incentives.order_rules_apply"
    ]
    assert not PointsEntry.objects.exists()
    assert tasks.order_rules_apply_task(ids) == 1
    assert tasks.order_rules_apply_task(ids) == 0
    assert _balance("u1") == 199
    refunded = {**order, "status": "refunded"}
    ids2 = _ingest(api, django_capture_on_commit_callbacks, "/api/v1/orders/batch", [refunded])[
        "incentives.order_rules_apply"
    ]
    assert ids2 == ids
    assert PointsEntry.objects.count() == 1  # the refund request itself reversed nothing
    assert tasks.order_rules_apply_task(ids2) == 1
    assert tasks.order_rules_apply_task(ids2) == 0
    assert _balance("u1") == 0
    assert list(PointsEntry.objects.order_by("id").values_list("kind", "amount")) == [("earn", 199), ("reverse", -199)]


def test_invite_accepted_pays_both(api, django_capture_on_commit_callbacks):
    _customers(api, {"external_id": "inviter"}, {"external_id": "invitee", "referred_by": "inviter"})
    items = [
        {"customer": "invitee", "type": "invite_accepted", "occurred_at": DAY0.isoformat(), "external_id": "inv-1"}
    ]
    ids = _ingest(api, django_capture_on_commit_callbacks, "/api/v1/events/batch", items)[
        "incentives.event_rules_apply"
    ]
    assert not PointsEntry.objects.exists()
    tasks.event_rules_apply_task(ids)
    assert (_balance("inviter"), _balance("invitee")) == (100, 100)


def test_content_accepted_capped_and_badge(api, django_capture_on_commit_callbacks):
    _customers(api, {"external_id": "writer", "timezone": "UTC"})
    # 12 accepted posts on one day: 5 pay (cap 100 at 20 each); 10+ earn the content-master badge
    items = [
        {
            "customer": "writer",
            "type": "content_accepted",
            "occurred_at": (DAY0 + timedelta(minutes=i)).isoformat(),
            "external_id": f"post-{i}",
        }
        for i in range(12)
    ]
    ids = _ingest(api, django_capture_on_commit_callbacks, "/api/v1/events/batch", items)[
        "incentives.event_rules_apply"
    ]
    assert not PointsEntry.objects.exists() and not CustomerBadge.objects.exists()
    assert tasks.event_rules_apply_task(ids) == 5
    assert _balance("writer") == 100
    assert list(CustomerBadge.objects.values_list("badge__code", flat=True)) == ["content-master-10"]


def test_task_for_events_that_are_gone_returns_quietly(db):
    assert tasks.event_rules_apply_task([987654]) == 0
    assert tasks.order_rules_apply_task([987654]) == 0

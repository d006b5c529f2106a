"""The composition layer wires users' hooks to incentives: users queues only its own
roll-up, the points tasks come through ``users.hooks``, and the hooks carry the ids
the subscribers need (on commit, as before)."""

from datetime import UTC, datetime

import pytest

from campaigns import tasks as campaigns_tasks
from incentives import tasks as incentives_tasks
from users import hooks
from users import tasks as users_tasks
from users.models import Event, Order

pytestmark = pytest.mark.django_db
WHEN = datetime(2026, 3, 1, 10, tzinfo=UTC).isoformat()


@pytest.fixture
def probe():
    """Records what each users hook publishes, and unsubscribes afterwards."""
    seen = {"orders_changed": [], "events_appended": []}

    def on_orders(**payload):
        seen["orders_changed"].append(payload)

    def on_events(**payload):
        seen["events_appended"].append(payload)

    hooks.orders_changed.subscribe(on_orders)
    hooks.events_appended.subscribe(on_events)
    yield seen
    hooks.orders_changed.unsubscribe(on_orders)
    hooks.events_appended.unsubscribe(on_events)


@pytest.fixture
def unwired():
    """Incentives and campaigns unsubscribed, as if the composition layer had not wired them."""
    wired = [
        (hooks.orders_changed, incentives_tasks.orders_changed_queue_rules),
        (hooks.events_appended, incentives_tasks.events_appended_queue_rules),
        (hooks.orders_changed, campaigns_tasks.orders_changed_attribute),
        (hooks.customer_unsubscribed, campaigns_tasks.customer_unsubscribed_record),
    ]
    for hook, subscriber in wired:
        hook.unsubscribe(subscriber)
    yield
    for hook, subscriber in wired:
        hook.subscribe(subscriber)


def _queued(callbacks) -> list[tuple[str, list]]:
    return [(cb.func.__self__.name, cb.args[0]) for cb in callbacks if hasattr(getattr(cb, "func", None), "__self__")]


def _post(api, path, items):
    response = api.post(path, {"items": items}, format="json")
    assert response.status_code == 200 and not response.json()["errors"], response.content


def test_console_subscribes_incentives_to_the_users_hooks():
    assert campaigns_tasks.orders_changed_attribute in hooks.orders_changed.subscribers
    assert campaigns_tasks.customer_unsubscribed_record in hooks.customer_unsubscribed.subscribers
    assert incentives_tasks.orders_changed_queue_rules in hooks.orders_changed.subscribers
    assert incentives_tasks.events_appended_queue_rules in hooks.events_appended.subscribers


def test_an_order_batch_publishes_orders_changed_and_incentives_queues_on_commit(
    api, probe, django_capture_on_commit_callbacks
):
    _post(api, "/api/v1/customers/batch", [{"external_id": "c1"}])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _post(
            api,
            "/api/v1/orders/batch",
            [{"external_id": "o1", "customer": "c1", "amount": "10.00", "status": "paid", "occurred_at": WHEN}],
        )
    order = Order.objects.get()
    assert probe["orders_changed"] == [{"customer_ids": [order.customer_id], "order_ids": [order.pk]}]
    assert _queued(callbacks) == [
        (users_tasks.customer_order_stats_refresh_task.name, [order.customer_id]),
        (incentives_tasks.order_rules_apply_task.name, [order.pk]),
        (campaigns_tasks.conversions_attribute_task.name, [order.pk]),  # a campaign's conversion, if any
    ]


def test_without_the_wiring_users_queues_only_its_own_roll_up(api, unwired, django_capture_on_commit_callbacks):
    _post(api, "/api/v1/customers/batch", [{"external_id": "c1"}])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _post(
            api,
            "/api/v1/orders/batch",
            [{"external_id": "o1", "customer": "c1", "amount": "10.00", "status": "paid", "occurred_at": WHEN}],
        )
        _post(api, "/api/v1/events/batch", [{"customer": "c1", "type": "checkin", "occurred_at": WHEN}])
    assert [name for name, _ in _queued(callbacks)] == [users_tasks.customer_order_stats_refresh_task.name]


def test_new_events_are_published_by_type_and_a_replay_publishes_nothing(
    api, probe, django_capture_on_commit_callbacks
):
    _post(api, "/api/v1/customers/batch", [{"external_id": "c1"}])
    items = [
        {"customer": "c1", "type": "checkin", "occurred_at": WHEN, "external_id": "e1"},
        {"customer": "c1", "type": "login", "occurred_at": WHEN, "external_id": "e2"},
        {"customer": "c1", "type": "checkin", "occurred_at": WHEN, "external_id": "e3"},
    ]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _post(api, "/api/v1/events/batch", items)
    ids = dict(Event.objects.values_list("external_id", "id"))
    assert probe["events_appended"] == [
        {"event_ids_by_type": {"checkin": sorted([ids["e1"], ids["e3"]]), "login": [ids["e2"]]}}
    ]
    # Incentives queues the rule-triggering ones only (the login pays nothing).
    assert _queued(callbacks) == [(incentives_tasks.event_rules_apply_task.name, sorted([ids["e1"], ids["e3"]]))]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _post(api, "/api/v1/events/batch", items)
    assert len(probe["events_appended"]) == 1 and _queued(callbacks) == []

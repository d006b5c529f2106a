"""No number of racing senders can beat the caps: the check and the delivery row are
one step under the customer's contact-state lock (PostgreSQL row locks)."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import time, timedelta

import pytest
from django.db import connection

from campaigns import rules
from campaigns.models import Delivery
from campaigns.services.messages import message_send
from campaigns.services.policy import policy_load, policy_settings
from tests.users.factories import CustomerFactory

RACERS = 200
# PostgreSQL allows 100 connections by default: 40 threads with a connection each fire the
# 200 sends, released together by a barrier, so every send races the others in flight.
THREADS = 40


def _sequential_outcome(policy: rules.Policy, due, count: int) -> list[rules.Decision]:
    """What the pure rules allow when the same sends arrive one after another."""
    history, decisions = [], []
    recipient = rules.Recipient(consent={"push": True}, do_not_contact=False, timezone="Asia/Shanghai")
    for _ in range(count):
        send = rules.Send(channel="push", category=rules.MARKETING, due=due, max_delay=timedelta(hours=24))
        decision = rules.decide(send=send, recipient=recipient, history=history, policy=policy)
        decisions.append(decision)
        if decision.send_after is not None:
            history.append(rules.Planned(at=decision.send_after, channel="push"))
    return decisions


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_hundred_concurrent_pushes_at_one_customer_get_exactly_what_the_caps_allow():
    knobs = policy_settings()
    knobs.quiet_start = knobs.quiet_end = time(0, 0)  # the hour the test runs at must not matter
    knobs.save()
    customer = CustomerFactory(external_id="racer", consent_push=True)
    start = threading.Barrier(THREADS)

    def race(thread: int) -> list[str]:
        try:
            start.wait()
            return [
                message_send(
                    customer_external_id="racer",
                    channel="push",
                    category="marketing",
                    content=f"offer {n}",
                    idempotency_key=f"race-{n}",
                ).delivery.status
                for n in range(thread, RACERS, THREADS)
            ]
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        statuses = [status for batch in pool.map(race, range(THREADS)) for status in batch]

    deliveries = Delivery.objects.filter(customer=customer)
    assert deliveries.count() == RACERS and len(set(deliveries.values_list("key", flat=True))) == RACERS
    planned = sorted(deliveries.exclude(planned_at=None).values_list("planned_at", flat=True))
    # Independent check over what was recorded: no rolling window holds more than a cap allows.
    policy = policy_load()
    assert rules.violations([rules.Planned(at=at, channel="push") for at in planned], policy) == []
    # And exactly as many got through as one-after-another would let through.
    first_due = deliveries.order_by("due_at").first().due_at
    expected = _sequential_outcome(policy, first_due, RACERS)
    allowed = sum(1 for d in expected if d.status != rules.SUPPRESSED)
    assert len(planned) == allowed == 8  # 1 per 3 h and 7 per 24 h, within the API's 24 h delay
    assert statuses.count("queued") == 1 and statuses.count("deferred") == allowed - 1
    assert statuses.count("suppressed") == RACERS - allowed
    assert set(deliveries.filter(status="suppressed").values_list("reason", flat=True)) == {"cap"}

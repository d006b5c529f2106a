"""The outbox against a real gateway: a message through ``POST /api/v1/messages`` to a
local HTTP server via the signed webhook backend; a 500 or a slow answer is recorded
and retried later with back-off, a 400 fails for good, and attempts run out."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Delivery
from campaigns.services import outbox
from tests.campaigns.test_backends import SECRET, answer, gateway  # noqa: F401  (the local gateway)
from tests.queued import run_queued
from tests.users.factories import CustomerFactory


@pytest.fixture
def sms_gateway(settings, gateway):  # noqa: F811
    settings.OPS_CHANNEL_BACKENDS = dict.fromkeys(settings.OPS_CHANNELS, "log") | {"sms": gateway.url}
    settings.OPS_CHANNEL_SECRETS = {"sms": SECRET}
    settings.OPS_CHANNEL_READ_TIMEOUT = 0.5
    settings.OPS_CHANNEL_RATES = {}
    return gateway


@pytest.fixture
def message(api, django_capture_on_commit_callbacks):
    """``message(key)``: a transactional SMS through the API, its on-commit sender run."""

    def send(key: str) -> Delivery:
        body = {"customer": "c-gw", "channel": "sms", "category": "transactional", "content": "您的订单已发货",
                "idempotency_key": key}  # fmt: skip
        with django_capture_on_commit_callbacks() as callbacks:
            response = api.post("/api/v1/messages", body, format="json")
        assert response.status_code == 202, response.content
        assert run_queued(callbacks) == {"campaigns.outbox_send": [()]}
        return Delivery.objects.get(pk=response.json()["delivery"]["id"])

    return send


@pytest.fixture
def customer(db):
    return CustomerFactory(external_id="c-gw", phone="13800138000")


def test_a_500_then_a_slow_answer_are_retried_with_back_off_then_it_goes(message, customer, sms_gateway):
    sms_gateway.answers(answer(500), answer(200, delay=1.5), answer(200, b'{"id": "gw-9"}'))
    delivery = message("ship-1")  # the on-commit sender ran: the first attempt got the 500
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("queued", 1, "HTTP 500")
    assert delivery.send_after >= timezone.now() + timedelta(seconds=25)  # 30 s back-off

    later = delivery.send_after + timedelta(seconds=1)
    assert outbox.outbox_drain(now=later).retry == 1  # the slow answer: a time-out, retried
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("queued", 2, "timeout")

    assert outbox.outbox_drain(now=delivery.send_after + timedelta(seconds=1)).sent == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.provider_id, delivery.attempts) == ("sent", "gw-9", 3)
    keys = {r["headers"]["Idempotency-Key"] for r in sms_gateway.requests}
    assert keys == {"msg:ship-1"} and all(r["signature_ok"] for r in sms_gateway.requests)
    assert b"13800138000" in sms_gateway.requests[-1]["body"]  # the gateway gets the address


def test_a_400_fails_for_good_and_attempts_run_out(message, customer, sms_gateway, settings):
    sms_gateway.answers(answer(400))
    refused = message("bad-1")
    refused.refresh_from_db()
    assert (refused.status, refused.last_error, refused.planned_at) == ("failed", "HTTP 400", None)

    settings.OPS_OUTBOX_MAX_ATTEMPTS = 2
    sms_gateway.answers(answer(503), answer(503))
    flaky = message("flaky-1")
    flaky.refresh_from_db()
    assert flaky.status == "queued"
    outbox.outbox_drain(now=flaky.send_after + timedelta(seconds=1))
    flaky.refresh_from_db()
    assert flaky.status == "failed" and flaky.last_error.startswith("gave up after 2")
    assert len(sms_gateway.requests) == 3  # one for the 400, two for the 503s: nothing more


def test_a_claim_left_by_a_dead_worker_is_recovered_once(message, customer, sms_gateway):
    sms_gateway.answers(answer(500))
    delivery = message("crash-1")
    Delivery.objects.filter(pk=delivery.pk).update(status="sending", claimed_at=timezone.now() - timedelta(hours=1))
    assert outbox.outbox_recover(lease_seconds=60) == 1
    assert outbox.outbox_recover(lease_seconds=60) == 0
    delivery.refresh_from_db()
    assert (delivery.status, delivery.recovered) == ("queued", 1)

"""Campaigns for automation over REST, delivery callbacks, and conversions credited."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Delivery, DeliveryEvent, DispatchChunk
from campaigns.services import dispatch, outbox
from campaigns.services import results as results_services
from tests.queued import run_queued
from tests.users.factories import CustomerFactory, OrderFactory


@pytest.fixture
def segment(db, static_segment):
    return static_segment("api-audience", [CustomerFactory(consent_push=True) for _ in range(12)])


def _body(segment, **overrides):
    return {
        "name": "Win-back",
        "channel": "push",
        "segments": [segment],
        "variants": [{"code": "A", "share": 50, "template": "promo"}, {"code": "B", "share": 50, "template": "promo"}],
    } | overrides


def _sent_campaign(api, segment, django_capture_on_commit_callbacks) -> dict:
    created = api.post("/api/v1/campaigns", _body(segment), format="json")
    assert created.status_code == 201, created.content
    campaign_id = created.json()["id"]
    with django_capture_on_commit_callbacks() as callbacks:
        launched = api.post(f"/api/v1/campaigns/{campaign_id}/launch")
    assert launched.status_code == 200, launched.content
    assert run_queued(callbacks) == {"campaigns.dispatch": [(campaign_id, "once", launched.json()["start_at"])]}
    for chunk in DispatchChunk.objects.filter(campaign_id=campaign_id):
        dispatch.write_chunk(chunk_id=chunk.pk)
    assert outbox.outbox_drain().sent == 12
    return api.get(f"/api/v1/campaigns/{campaign_id}").json()


def test_create_launch_and_read_a_campaign(
    api, segment, approved_template, channel_log, no_quiet_hours, django_capture_on_commit_callbacks
):
    body = _sent_campaign(api, segment, django_capture_on_commit_callbacks)
    assert body["status"] == "running"
    assert body["deliveries"]["by_status"] == {"sent": 12}
    variants = {v["variant"]: v for v in body["results"]["variants"]}
    assert set(variants) == {"A", "B"} and sum(v["sent"] for v in variants.values()) == 12
    assert body["results"]["ab_test"]["status"] == "not_enough_data"


def test_callbacks_record_results_once_and_report_unknown_deliveries(
    api, segment, approved_template, channel_log, no_quiet_hours, django_capture_on_commit_callbacks
):
    body = _sent_campaign(api, segment, django_capture_on_commit_callbacks)
    sent = list(Delivery.objects.filter(campaign_id=body["id"]).order_by("pk"))
    at = timezone.now().isoformat()
    items = [
        {"delivery": sent[0].pk, "event": "delivered", "at": at},
        {"delivery": sent[0].pk, "event": "opened", "at": at},
        {"delivery": sent[1].pk, "event": "clicked", "at": at},
        {"delivery": 999_999, "event": "opened", "at": at},
    ]
    first = api.post("/api/v1/deliveries/callbacks", {"items": items}, format="json")
    assert first.status_code == 200, first.content
    assert first.json()["created"] == 3
    assert [(e["index"], e["field"]) for e in first.json()["errors"]] == [(3, "delivery")]
    replay = api.post("/api/v1/deliveries/callbacks", {"items": items[:3]}, format="json").json()
    assert replay["created"] == 0 and replay["unchanged"] == 3
    assert DeliveryEvent.objects.count() == 3
    sent[0].refresh_from_db()
    sent[1].refresh_from_db()
    assert (sent[0].status, sent[1].status) == ("opened", "clicked")
    atomic = api.post("/api/v1/deliveries/callbacks", {"items": items, "atomic": True}, format="json")
    assert atomic.status_code == 422 and DeliveryEvent.objects.count() == 3
    bad = api.post(
        "/api/v1/deliveries/callbacks", {"items": [{"delivery": sent[0].pk, "event": "exploded"}]}, format="json"
    )
    assert bad.status_code == 200 and bad.json()["errors"][0]["field"] in ("event", "at")


def test_a_paid_order_after_the_message_is_its_conversion(
    api, segment, approved_template, channel_log, no_quiet_hours, django_capture_on_commit_callbacks
):
    body = _sent_campaign(api, segment, django_capture_on_commit_callbacks)
    delivery = Delivery.objects.filter(campaign_id=body["id"]).select_related("customer").first()
    with django_capture_on_commit_callbacks() as callbacks:
        api.post(
            "/api/v1/orders/batch",
            {"items": [{"external_id": "conv-1", "customer": delivery.customer.external_id, "amount": "88.00",
                        "occurred_at": (timezone.now() + timedelta(hours=1)).isoformat()}]},
            format="json",
        )  # fmt: skip
    run_queued(callbacks)
    delivery.refresh_from_db()
    assert delivery.converted_at is not None and str(delivery.revenue) == "88.00"
    results = api.get(f"/api/v1/campaigns/{body['id']}").json()["results"]
    assert results["revenue"] == "88.00"
    # Too late for the window (7 days): an order 30 days on is nobody's conversion.
    late = OrderFactory(customer=delivery.customer, occurred_at=timezone.now() + timedelta(days=30))
    other = Delivery.objects.filter(campaign_id=body["id"]).exclude(pk=delivery.pk).select_related("customer").first()
    early = OrderFactory(customer=other.customer, occurred_at=timezone.now() + timedelta(days=30))
    assert results_services.conversions_attribute(order_ids=[late.pk, early.pk]) == 0
    assert Delivery.objects.filter(campaign_id=body["id"]).exclude(converted_at=None).count() == 1


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"segments": ["nope"]}, 422, "unknown_segment"),
        ({"variants": [{"code": "A", "share": 70, "template": "promo"}]}, 422, "invalid_split"),
        ({"variants": []}, 400, "invalid"),
        ({"channel": "pigeon"}, 400, "invalid"),
        ({"schedule": "recurring", "cron": "61 * * * *"}, 422, "invalid_schedule"),
        ({"start_at": "2020-01-01T00:00:00Z"}, 201, None),  # a draft may say anything; launch refuses it
        ({"cost": "-5"}, 400, "invalid"),
    ],
)
def test_bad_campaigns_are_refused(api, segment, approved_template, overrides, status, code):
    response = api.post("/api/v1/campaigns", _body(segment, **overrides), format="json")
    assert response.status_code == status, response.content
    if code:
        assert response.json()["error"]["code"] == code
    else:
        launched = api.post(f"/api/v1/campaigns/{response.json()['id']}/launch")
        assert launched.status_code == 422 and launched.json()["error"]["code"] == "schedule_in_past"


def test_unknown_campaigns_and_scopes(api, make_api, segment, approved_template):
    assert api.get("/api/v1/campaigns/999999").status_code == 404
    assert api.post("/api/v1/campaigns/999999/pause").status_code == 404
    assert make_api(["messages:write"]).post("/api/v1/campaigns", _body(segment), format="json").status_code == 403
    created = api.post("/api/v1/campaigns", _body(segment), format="json").json()
    paused = api.post(f"/api/v1/campaigns/{created['id']}/pause")
    assert paused.status_code == 409 and paused.json()["error"]["code"] == "campaign_transition"

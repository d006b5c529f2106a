"""Tracked links: a marketing message's links go out signed; a click is recorded once
per instant and redirects only where the message pointed."""

from django.core import signing
from django.utils import timezone

from campaigns.models import Delivery, DeliveryEvent
from campaigns.services import tracking
from tests.users.factories import CustomerFactory


def _sent() -> Delivery:
    now = timezone.now()
    return Delivery.objects.create(
        key="t-1", customer=CustomerFactory(), channel="push", category="marketing", status="sent",
        due_at=now, send_after=now, planned_at=now, sent_at=now,
    )  # fmt: skip


def test_links_in_a_body_are_swapped_for_tracked_ones_and_punctuation_stays_outside(db):
    body = "春季特惠 https://shop.example/sale?id=7。详情见 http://shop.example/faq."
    out = tracking.links_tracked(body, delivery_id=5)
    assert "https://shop.example/sale" not in out and "http://shop.example/faq" not in out
    assert out.count("/t/") == 2 and out.endswith("/.") and "。详情见" in out
    assert tracking.links_tracked("no links here", delivery_id=5) == "no links here"


def test_a_click_is_recorded_and_redirects_to_the_original(client, db):
    delivery = _sent()
    url = tracking.tracked_url(delivery_id=delivery.pk, url="https://shop.example/sale?id=7")
    response = client.get("/" + url.split("://", 1)[1].split("/", 1)[1])
    assert response.status_code == 302 and response["Location"] == "https://shop.example/sale?id=7"
    delivery.refresh_from_db()
    assert delivery.status == "clicked" and delivery.clicked_at is not None
    assert DeliveryEvent.objects.filter(delivery=delivery, event="clicked").count() == 1


def test_forged_or_altered_links_are_refused_and_record_nothing(client, db):
    delivery = _sent()
    good = tracking.tracked_url(delivery_id=delivery.pk, url="https://shop.example/")
    token = good.rstrip("/").rsplit("/", 1)[1]
    forged = signing.dumps([delivery.pk, "https://evil.example/"], salt="another-salt", compress=True)
    for bad in (token[:-3] + "abc", forged, "not-a-token"):
        response = client.get(f"/t/{bad}/")
        assert response.status_code == 400
        assert "https://evil.example/" not in response.get("Location", "")
    assert not DeliveryEvent.objects.exists()

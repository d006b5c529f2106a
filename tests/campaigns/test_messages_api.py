"""POST /api/v1/messages: one message under the contact policy, recorded before it is
handed over, idempotent, with the reason whenever it is held back."""

import json

import pytest
from django.core import signing
from django.urls import reverse

from campaigns.backends import read_log
from campaigns.models import Delivery
from campaigns.services import outbox
from core.models import AuditEntry
from tests.queued import run_queued
from tests.users.factories import CustomerFactory

URL = "/api/v1/messages"


def _send(api, **overrides):
    body = {
        "customer": "c-1",
        "channel": "push",
        "category": "marketing",
        "content": "Spring sale starts today",
        "idempotency_key": "k-1",
    } | overrides
    return api.post(URL, body, format="json")


@pytest.fixture
def customer(db):
    return CustomerFactory(external_id="c-1", consent_push=True, consent_sms=False)


def test_a_marketing_push_is_queued_recorded_and_handed_over_once(
    api, customer, channel_log, no_quiet_hours, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = _send(api)
    assert response.status_code == 202, response.json()
    assert run_queued(callbacks) == {"campaigns.outbox_send": [()]}
    body = response.json()["delivery"]
    assert body["status"] == "queued" and body["reason"] == "" and body["send_after"]
    delivery = Delivery.objects.get(pk=body["id"])
    # The on-commit sender ran: handed over once, under the delivery's key.
    assert delivery.status == "sent" and delivery.sent_at is not None and delivery.attempts == 1
    lines = read_log(channel_log)
    assert [(line["delivery"], line["key"]) for line in lines] == [(delivery.pk, "msg:k-1")]

    replay = _send(api)
    assert replay.status_code == 200 and replay.json()["delivery"]["id"] == delivery.pk
    assert Delivery.objects.count() == 1
    assert outbox.outbox_drain().sent == 0  # nothing left to send
    assert len(read_log(channel_log)) == 1


def test_the_second_push_within_three_hours_is_deferred_by_the_gap(api, customer, channel_log, no_quiet_hours):
    first = _send(api, idempotency_key="a").json()["delivery"]
    second = _send(api, idempotency_key="b").json()["delivery"]
    assert first["status"] == "queued"
    assert second["status"] == "deferred" and second["reason"] == "cap" and second["rule"] == "cap:push-3-7"
    assert second["send_after"] > first["send_after"]


def test_no_consent_and_do_not_contact_suppress_with_the_reason(api, customer, no_quiet_hours):
    sms = _send(api, channel="sms", idempotency_key="s").json()["delivery"]
    assert (sms["status"], sms["reason"], sms["rule"], sms["send_after"]) == (
        "suppressed",
        "no_consent",
        "consent:sms",
        None,
    )
    customer.do_not_contact = True
    customer.save()
    dnc = _send(api, idempotency_key="d").json()["delivery"]
    assert (dnc["status"], dnc["reason"]) == ("suppressed", "do_not_contact")


def test_transactional_skips_consent_and_caps(api, customer, no_quiet_hours):
    for n in range(3):
        delivery = _send(api, channel="sms", category="transactional", idempotency_key=f"t{n}").json()["delivery"]
        assert delivery["status"] == "queued", delivery


def test_quiet_hours_defer_a_marketing_send_to_their_end(api, customer, quiet_now):
    delivery = _send(api).json()["delivery"]
    assert (delivery["status"], delivery["reason"], delivery["rule"]) == ("deferred", "quiet_hours", "quiet_hours")


def test_unsubscribe_then_marketing_is_suppressed_as_unsubscribed(
    api, customer, no_quiet_hours, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(f"/api/v1/customers/{customer.external_id}/unsubscribe", {"channel": "push"}, format="json")
    run_queued(callbacks)
    assert response.status_code == 200, response.content
    delivery = _send(api, idempotency_key="after").json()["delivery"]
    assert (delivery["status"], delivery["reason"], delivery["rule"]) == (
        "suppressed",
        "unsubscribed",
        "unsubscribe:push",
    )


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"customer": "nobody"}, 404, "unknown_customer"),
        ({"channel": "fax"}, 400, "invalid"),
        ({"category": "spam"}, 400, "invalid"),
        ({"content": None}, 400, "invalid"),  # neither content nor template
        ({"template": "welcome"}, 400, "invalid"),  # both
        ({"content": None, "template": "no-such-template"}, 422, "unknown_template"),
        ({"idempotency_key": ""}, 400, "invalid"),
        ({"idempotency_key": "bad key with spaces"}, 400, "invalid"),
    ],
)
def test_bad_messages_are_refused_in_the_error_shape_and_write_nothing(api, customer, overrides, status, code):
    body = {"customer": "c-1", "channel": "push", "category": "marketing", "content": "x", "idempotency_key": "k"}
    body = {k: v for k, v in (body | overrides).items() if v is not None}
    response = api.post(URL, body, format="json")
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert Delivery.objects.count() == 0


def test_the_same_key_for_another_customer_is_a_conflict(api, customer, no_quiet_hours):
    CustomerFactory(external_id="c-2")
    assert _send(api).status_code == 202
    response = _send(api, customer="c-2")
    assert response.status_code == 409 and response.json()["error"]["code"] == "idempotency_key_reused"


def test_an_unapproved_template_is_refused(api, customer, make_user):
    from communities.services import templates

    author = make_user("admin", username="author")
    templates.template_create(code="promo", name="Promo", kind="campaign", body="Hi {{ nickname }}", actor=author)
    response = _send(api, content=None, template="promo")
    assert response.status_code == 422 and response.json()["error"]["code"] == "template_not_approved"


def test_scopes_the_key_needs(make_api, customer):
    response = make_api(["customers:read"]).post(URL, {}, format="json")
    assert response.status_code == 403


def test_the_signed_unsubscribe_link_works_once_or_twice_and_refuses_forgeries(
    client, customer, django_capture_on_commit_callbacks
):
    from campaigns.services.unsubscribe import unsubscribe_token

    token = unsubscribe_token(customer_id=customer.pk, channel="push")
    url = reverse("unsubscribe", kwargs={"token": token})
    page = client.get(url)
    assert page.status_code == 200
    customer.refresh_from_db()
    assert customer.consent_push is True  # a GET (a link scanner) changes nothing
    with django_capture_on_commit_callbacks() as callbacks:
        first = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert run_queued(callbacks) == {"campaigns.contact_state_unsubscribed": [(customer.pk, ["push"])]}
    second = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert first.status_code == second.status_code == 200
    customer.refresh_from_db()
    assert customer.consent_push is False and customer.consent_sms is False
    audits = AuditEntry.objects.filter(action="customer.unsubscribe", object_id=str(customer.pk))
    assert audits.count() == 2 and audits.last().changes == {"consent_push": [True, False]}

    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    refused = client.post(reverse("unsubscribe", kwargs={"token": forged}))
    assert refused.status_code == 400
    # Another customer's id with this link's signature: refused, and nothing written.
    victim = CustomerFactory(external_id="c-victim", consent_push=True)
    payload = signing.b64_encode(json.dumps([victim.pk, "push"], separators=(",", ":")).encode()).decode()
    tampered = ":".join([payload, *token.split(":")[1:]])
    assert client.post(reverse("unsubscribe", kwargs={"token": tampered})).status_code == 400
    victim.refresh_from_db()
    assert victim.consent_push is True

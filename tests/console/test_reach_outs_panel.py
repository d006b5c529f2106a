"""The customer 360's reach-outs panel: each delivery planned for the customer with its
campaign, channel, status and reason, and the sentence that answers "why didn't she
get it" (``campaigns.selectors.delivery_explain``). Shown to those who may see
deliveries; one query however many there are."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.models import Delivery
from campaigns.services import campaigns as campaign_services
from campaigns.services.campaigns import VariantSpec
from tests.users.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved_template(make_user):
    """An approved SOP campaign template ``promo`` (as tests/campaigns/conftest.py makes it)."""
    from communities.services import templates

    writer, approver = make_user("admin", username="writer"), make_user("admin", username="approver")
    template = templates.template_create(code="promo", name="Spring promo", kind="campaign", body="Hi!", actor=writer)
    templates.version_approve(version=template.versions.get(), actor=approver)
    return template


@pytest.fixture
def static_segment():
    from segments import services as segment_services

    def make(name: str, customers) -> str:
        body = "\n".join(["external_id", *(c.external_id for c in customers)]).encode()
        return segment_services.static_segment_upload(name=name, file_bytes=body).slug

    return make


@pytest.fixture
def customer():
    return CustomerFactory(external_id="reach-001")


@pytest.fixture
def campaign(approved_template, static_segment, customer):
    return campaign_services.campaign_create(
        data={"name": "Spring sale", "channel": "push", "segments": [static_segment("spring", [customer])]},
        variants=[VariantSpec("A", 100, "promo")],
    )


def _delivery(customer, campaign=None, **fields) -> Delivery:
    now = timezone.now()
    values = {"channel": "push", "category": "marketing", "status": "sent", "due_at": now, "sent_at": now} | fields
    return Delivery.objects.create(
        key=f"k-{Delivery.objects.count()}",
        campaign=campaign,
        variant=campaign.variants.get() if campaign else None,
        customer=customer,
        **values,
    )


def _page(make_user, role: str, customer) -> str:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(make_user(role, f"panel-{role}"))
    response = client.get(f"/customers/{customer.external_id}/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_panel_says_why_each_reach_out_went_or_not(make_user, customer, campaign):
    deferred = _delivery(
        customer,
        campaign,
        status="deferred",
        reason="cap",
        rule="cap:push-3-7",
        sent_at=None,
        send_after=datetime(2030, 1, 2, 3, 4, tzinfo=UTC),
    )
    refused = _delivery(customer, campaign, status="suppressed", reason="no_consent", rule="consent", sent_at=None)
    sent = _delivery(customer, None, channel="sms", category="transactional")
    html = _page(make_user, "operator", customer)
    panel = html[html.index('data-section="reach-outs"') :]
    panel = panel[: panel.index("</section>")]
    row = panel[panel.index(f'data-delivery="{deferred.pk}"') :]
    row = row[: row.index("</tr>")]
    assert f'href="/campaigns/{campaign.pk}/">Spring sale</a>' in row and "app push" in row
    assert "frequency cap" in row
    assert "Held by the frequency cap push-3-7; deferred to 2030-01-02 03:04 UTC." in row
    assert "Not sent: no marketing consent for this channel." in panel
    row = panel[panel.index(f'data-delivery="{sent.pk}"') :]
    assert "single message" in row[: row.index("</tr>")] and "Allowed by every rule." in row
    assert f'data-delivery="{refused.pk}"' in panel


def test_a_customer_with_no_reach_outs_says_so(make_user, customer):
    html = _page(make_user, "viewer", customer)
    assert "No reach-outs to this customer yet." in html


def test_the_panel_is_left_out_for_those_who_may_not_see_deliveries(make_user, customer, campaign):
    _delivery(customer, campaign)
    html = _page(make_user, "community_manager", customer)
    assert 'data-section="reach-outs"' not in html and "Spring sale" not in html


def test_the_panel_reads_once_however_many_deliveries(make_user, customer, campaign):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(make_user("operator", "counter"))
    url = f"/customers/{customer.external_id}/"
    client.get(url)
    _delivery(customer, campaign)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for n in range(10):
        _delivery(customer, campaign, status="suppressed", reason="quiet_hours", rule=f"quiet:{n}", sent_at=None)
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(many) == len(few)

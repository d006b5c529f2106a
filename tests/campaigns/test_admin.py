"""The campaigns admin: caps and the contact policy are edited through
``campaigns.services.caps`` (audited; bad windows refused at the field with the reason,
nothing saved); campaigns, their variants and deliveries are read-only; deliveries are
filtered by status, channel, reason and campaign and found by key."""

import json

import pytest
from django.contrib import admin
from django.test import Client
from django.utils import timezone

from campaigns.models import CapRule, ContactPolicy, Delivery, DispatchChunk
from campaigns.services import campaigns as campaign_services
from campaigns.services.campaigns import VariantSpec
from core.models import AuditEntry
from tests.users.factories import CustomerFactory

pytestmark = pytest.mark.django_db

CAPS = "/admin/campaigns/caprule/"
POLICY = "/admin/campaigns/contactpolicy/"


@pytest.fixture
def admin_user(make_user):
    return make_user("admin", "boss")


@pytest.fixture
def client(admin_user):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(admin_user)
    return client


def _cap_form(**overrides) -> dict:
    return {
        "code": "email-weekly",
        "name": "Email weekly",
        "channel": "email",
        "content_class": "",
        "windows": json.dumps([{"seconds": 604800, "limit": 2}]),
        "is_active": "on",
    } | overrides


def test_the_caps_list_shows_the_windows_in_words(client):
    html = client.get(CAPS).content.decode()
    assert "push-3-7" in html and "at most 1 per 3 hours; at most 7 per 1 day" in html


def test_a_cap_added_in_the_admin_goes_through_the_service(client, admin_user):
    response = client.post(f"{CAPS}add/", _cap_form())
    assert response.status_code == 302, response.content.decode()[:2000]
    cap = CapRule.objects.get(code="email-weekly")
    assert cap.windows == [{"seconds": 604800, "limit": 2}]
    assert AuditEntry.objects.filter(action="cap.create", object_id=str(cap.pk), actor=admin_user).exists()


def test_a_cap_changed_in_the_admin_is_audited_from_to(client, admin_user):
    cap = CapRule.objects.get(code="sms-2-8")
    data = _cap_form(code="sms-2-8", name=cap.name, channel="sms", windows='[{"seconds": 172800, "limit": 1}]')
    assert client.post(f"{CAPS}{cap.pk}/change/", data).status_code == 302
    cap.refresh_from_db()
    assert cap.windows == [{"seconds": 172800, "limit": 1}]
    entry = AuditEntry.objects.get(action="cap.update", object_id=str(cap.pk))
    assert entry.actor == admin_user and list(entry.changes) == ["windows"]
    assert entry.changes["windows"][0] == [{"seconds": 172800, "limit": 1}, {"seconds": 2592000, "limit": 8}]


@pytest.mark.parametrize(
    ("windows", "message"),
    [
        ("[{seconds: 3600}]", "Not JSON."),
        ("[]", "from 1 to 10 windows"),
        ('[{"seconds": 3600, "limit": 0}]', "“limit” is a whole number from 1"),
        ('[{"seconds": 0, "limit": 1}]', "“seconds” is a whole number from 1"),
        ('{"seconds": 3600, "limit": 1}', "from 1 to 10 windows"),
        ('[{"secs": 3600, "limit": 1}]', "give exactly “seconds” and “limit”"),
    ],
)
def test_bad_windows_are_refused_at_the_field_and_nothing_is_saved(client, windows, message):
    response = client.post(f"{CAPS}add/", _cap_form(windows=windows))
    assert response.status_code == 200  # the form again, with the error
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors["windows"])
    assert not CapRule.objects.filter(code="email-weekly").exists()
    assert not AuditEntry.objects.filter(action__startswith="cap.").exists()


def test_a_duplicate_code_is_refused(client):
    response = client.post(f"{CAPS}add/", _cap_form(code="push-3-7"))
    assert response.status_code == 200 and "code" in response.context["adminform"].form.errors
    assert CapRule.objects.filter(code="push-3-7").count() == 1


def test_caps_are_switched_off_not_deleted(client):
    cap = CapRule.objects.get(code="push-3-7")
    assert client.get(f"{CAPS}{cap.pk}/delete/").status_code == 403
    assert CapRule.objects.filter(pk=cap.pk).exists()


def test_the_policy_row_is_edited_through_the_service(client, admin_user):
    policy = ContactPolicy.objects.get()
    data = {"quiet_start": "21:00", "quiet_end": "09:00", "backoff_after": "4", "backoff_factor": "0.5"}
    data["ab_min_sample"] = "100"
    assert client.post(f"{POLICY}{policy.pk}/change/", data).status_code == 302
    policy.refresh_from_db()
    assert policy.backoff_after == 4 and policy.ab_min_sample == 100
    entry = AuditEntry.objects.get(action="policy.update")
    assert entry.actor == admin_user and entry.changes["backoff_after"] == [3, 4]
    refused = client.post(f"{POLICY}{policy.pk}/change/", data | {"backoff_factor": "0.01"})
    assert refused.status_code == 200 and "backoff_factor" in refused.context["adminform"].form.errors
    assert client.get(f"{POLICY}add/").status_code == 403  # one row
    assert client.get(f"{POLICY}{policy.pk}/delete/").status_code == 403


@pytest.fixture
def campaign(approved_template, static_segment):
    customers = [CustomerFactory(external_id=f"adm-{n}") for n in range(3)]
    segment = static_segment("admin-list", customers)
    campaign = campaign_services.campaign_create(
        data={"name": "Admin list", "channel": "push", "segments": [segment]}, variants=[VariantSpec("A", 100, "promo")]
    )
    now = timezone.now()
    for n, (status, reason) in enumerate([("sent", ""), ("deferred", "cap"), ("suppressed", "no_consent")]):
        Delivery.objects.create(
            key=f"key-{n}",
            campaign=campaign,
            variant=campaign.variants.get(),
            customer=customers[n],
            channel="push",
            category="marketing",
            status=status,
            reason=reason,
            due_at=now,
        )
    Delivery.objects.create(
        key="api-1", customer=customers[0], channel="sms", category="transactional", status="sent", due_at=now
    )
    return campaign


def test_campaigns_and_variants_are_read_only(client, campaign):
    assert client.get("/admin/campaigns/campaign/").status_code == 200
    response = client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/")
    assert response.status_code == 200 and "Admin list" in response.content.decode()
    assert not response.context["has_change_permission"] and not response.context["has_add_permission"]
    assert client.get("/admin/campaigns/campaign/add/").status_code == 403
    assert client.post(f"/admin/campaigns/campaign/{campaign.pk}/delete/", {"post": "yes"}).status_code == 403


def _listed(client, **params) -> list[str]:
    response = client.get("/admin/campaigns/delivery/", params)
    assert response.status_code == 200
    return sorted(d.key for d in response.context["cl"].result_list)


def test_deliveries_are_filtered_and_found_by_key(client, campaign):
    assert _listed(client) == ["api-1", "key-0", "key-1", "key-2"]
    assert _listed(client, status__exact="deferred") == ["key-1"]
    assert _listed(client, channel__exact="sms") == ["api-1"]
    assert _listed(client, reason="no_consent") == ["key-2"]
    assert _listed(client, campaign=str(campaign.pk)) == ["key-0", "key-1", "key-2"]
    assert _listed(client, campaign="x") == []
    assert _listed(client, q="key-1") == ["key-1"]
    assert _listed(client, q="adm-0") == ["api-1", "key-0"]  # by the customer's external id too
    html = client.get("/admin/campaigns/delivery/").content.decode()
    assert "frequency cap" in html and "Admin list" in html


def test_deliveries_cannot_be_added_changed_or_deleted(client, campaign):
    delivery = Delivery.objects.get(key="key-0")
    assert client.get("/admin/campaigns/delivery/add/").status_code == 403
    response = client.get(f"/admin/campaigns/delivery/{delivery.pk}/change/")
    assert response.status_code == 200 and not response.context["has_change_permission"]
    assert client.post(f"/admin/campaigns/delivery/{delivery.pk}/delete/", {"post": "yes"}).status_code == 403


def test_dispatch_chunks_are_not_in_the_admin():
    assert DispatchChunk not in admin.site._registry


def test_operators_have_no_admin(make_user):
    client = Client()
    client.force_login(make_user("operator"))
    assert client.get(CAPS).status_code == 302  # to the admin's login: not staff

"""API keys: one definition of a working key (``ApiKey.inactive_reason``), read by
authentication; edits in the admin go through ``api_key_update`` and are audited."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import ApiKey, AuditEntry
from core.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


def _get(full: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {full}")
    return client.get("/api/v1/customers/", HTTP_ACCEPT_LANGUAGE="en")


def test_the_model_says_why_a_key_is_refused_and_authentication_agrees():
    key, full = api_key_create(name="backend", scopes=["customers:read"])
    assert key.inactive_reason() is None and key.is_active
    assert _get(full).status_code == 200

    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    key.refresh_from_db()
    assert key.inactive_reason() == "expired" and not key.is_active
    refused = _get(full)
    assert refused.status_code == 401 and "expired" in refused.content.decode()

    api_key_revoke(key=key)
    key.refresh_from_db()
    assert key.inactive_reason() == "revoked"  # revoked wins over expired
    refused = _get(full)
    assert refused.status_code == 401 and "revoked" in refused.content.decode()


def test_a_key_expiring_later_still_works():
    key, full = api_key_create(name="backend", scopes=["customers:read"], expires_at=timezone.now() + timedelta(days=1))
    assert key.inactive_reason(timezone.now() + timedelta(days=2)) == "expired"
    assert _get(full).status_code == 200


def test_an_admin_edit_of_a_key_is_audited_from_to(make_user):
    admin = make_user("admin")
    key, _full = api_key_create(name="backend", scopes=["customers:read"], rate_limit="600/min")
    client = Client()
    client.force_login(admin)
    r = client.post(
        f"/admin/core/apikey/{key.pk}/change/",
        {"name": "backend v2", "rate_limit": "60/min", "expires_at_0": "", "expires_at_1": ""},
    )
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
    key.refresh_from_db()
    assert (key.name, key.rate_limit) == ("backend v2", "60/min")
    entry = AuditEntry.objects.get(action="api_key.change")
    assert entry.changes == {"name": ["backend", "backend v2"], "rate_limit": ["600/min", "60/min"]}
    assert entry.actor_id == admin.pk


def test_keys_are_revoked_not_deleted_in_the_admin(make_user):
    key, _full = api_key_create(name="backend", scopes=["customers:read"])
    client = Client()
    client.force_login(make_user("admin"))
    assert client.post(f"/admin/core/apikey/{key.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ApiKey.objects.filter(pk=key.pk).exists()


def test_a_revoke_is_audited_from_to():
    key, _full = api_key_create(name="backend", scopes=["customers:read"])
    api_key_revoke(key=key)
    entry = AuditEntry.objects.get(action="api_key.revoke")
    assert entry.changes == {"revoked_at": [None, key.revoked_at.isoformat()]}

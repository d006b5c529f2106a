import hashlib
import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from core.errors import ApplicationError
from core.models import ApiKey, ApiScope, AuditEntry
from core.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db

LIST = "/api/v1/customers/"


def _client(full_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {full_key}")
    return client


def test_only_the_hash_of_the_secret_is_stored():
    key, full = api_key_create(name="backend", scopes=["customers:read"])
    tag, prefix, secret = full.split("_", 2)
    assert (tag, prefix) == ("opsk", key.prefix)
    assert len(secret) >= 40
    stored = ApiKey.objects.filter(pk=key.pk).values().get()
    assert stored["hashed_secret"] == hashlib.sha256(secret.encode()).hexdigest()
    assert not any(secret in str(value) for value in stored.values())
    assert not any(secret in str(entry.changes) for entry in AuditEntry.objects.all())
    assert secret not in str(key) and secret not in repr(key)


def test_two_keys_never_share_a_prefix_or_secret():
    _a, full_a = api_key_create(name="a", scopes=[])
    _b, full_b = api_key_create(name="b", scopes=[])
    assert full_a.split("_")[1] != full_b.split("_")[1]
    assert full_a != full_b


def test_create_records_an_audit_entry_with_the_scopes():
    key, _full = api_key_create(name="backend", scopes=["customers:read", "customers:write"])
    entry = AuditEntry.objects.get(action="api_key.create")
    assert entry.object_id == str(key.pk)
    assert entry.changes == {"scopes": ["customers:read", "customers:write"]}


@pytest.mark.parametrize(("name", "scopes"), [("  ", ["customers:read"]), ("x", ["customers:everything"])])
def test_create_rejects_a_blank_name_or_unknown_scope(name, scopes):
    with pytest.raises(ApplicationError):
        api_key_create(name=name, scopes=scopes)
    assert ApiKey.objects.count() == 0


def test_create_api_key_command_prints_a_key_that_authenticates():
    out = io.StringIO()
    call_command("create_api_key", "backend", stdout=out)
    full = out.getvalue().strip()
    assert full.startswith("opsk_") and "\n" not in full
    key = ApiKey.objects.get(name="backend")
    assert sorted(key.scopes) == sorted(ApiScope.values)
    assert _client(full).get(LIST).status_code == 200


def test_create_api_key_command_with_scopes_and_rate():
    out = io.StringIO()
    call_command("create_api_key", "reader", "--scope", "customers:read", "--rate", "60/min", stdout=out)
    key = ApiKey.objects.get(name="reader")
    assert key.scopes == ["customers:read"] and key.rate_limit == "60/min"
    client = _client(out.getvalue().strip())
    assert client.get(LIST).status_code == 200
    assert client.post("/api/v1/customers/batch", {"items": []}, format="json").status_code == 403


def test_create_api_key_command_rejects_an_unknown_scope():
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("create_api_key", "backend", "--scope", "customers:everything", stdout=io.StringIO())
    assert ApiKey.objects.count() == 0


def test_revoked_key_no_longer_authenticates():
    key, full = api_key_create(name="backend", scopes=["customers:read"])
    client = _client(full)
    assert client.get(LIST).status_code == 200
    api_key_revoke(key=key)
    response = client.get(LIST)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    key.refresh_from_db()
    assert key.revoked_at is not None and not key.is_active
    assert AuditEntry.objects.filter(action="api_key.revoke", object_id=str(key.pk)).count() == 1


def test_revoking_twice_keeps_the_first_revocation():
    key, _full = api_key_create(name="backend", scopes=[])
    first = api_key_revoke(key=key).revoked_at
    api_key_revoke(key=key)
    key.refresh_from_db()
    assert key.revoked_at == first
    assert AuditEntry.objects.filter(action="api_key.revoke").count() == 1


def test_use_is_recorded_at_most_once_a_minute():
    key, full = api_key_create(name="backend", scopes=["customers:read"])
    client = _client(full)
    client.get(LIST)
    key.refresh_from_db()
    first = key.last_used_at
    assert first is not None
    client.get(LIST)
    key.refresh_from_db()
    assert key.last_used_at == first

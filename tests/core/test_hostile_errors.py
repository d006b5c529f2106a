"""Issue 9, class 9: the errors Django answers itself (too large, no such path, wrong
method, a crash) come in the API's JSON error shape under /api/, HTML elsewhere."""

import json

import pytest
from django.test import RequestFactory
from hypothesis import given, settings
from hypothesis import strategies as st

from core.api_errors import handler500

pytestmark = pytest.mark.django_db


def _error(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = json.loads(response.content)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_a_body_over_the_limit_is_413_in_the_shape(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    items = [{"external_id": f"c{i}", "name": "x" * 50} for i in range(100)]
    r = api.post("/api/v1/customers/batch", {"items": items}, format="json")
    assert r.status_code == 413
    error = _error(r)
    assert error["code"] == "request_too_large" and error["details"] == {"max_bytes": 2000}


def test_a_body_within_the_limit_is_read(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    r = api.post("/api/v1/customers/batch", {"items": [{"external_id": "c1"}]}, format="json")
    assert r.status_code == 200, r.content


def test_the_default_limit_holds_a_full_batch_of_rich_rows():
    from django.conf import settings as django_settings

    row = {
        "external_id": "c" * 64,
        "name": "名" * 100,
        "nickname": "n" * 100,
        "phone": "+8613812345678",
        "email": "someone.long.name@example.com",
        "city": "c" * 100,
        "tags": [f"tag-{i}" for i in range(20)],
        "signup_at": "2026-03-01T10:00:00+08:00",
        "timezone": "Asia/Shanghai",
    }
    body = json.dumps({"items": [row] * django_settings.OPS_BATCH_MAX_ITEMS}, ensure_ascii=False).encode()
    assert len(body) < django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE


@settings(max_examples=30, deadline=None)
@given(tail=st.from_regex(r"[a-z0-9_/-]{1,40}", fullmatch=True))
def test_an_unknown_api_path_is_404_in_the_shape(tail):
    from rest_framework.test import APIClient

    for client in (APIClient(),):
        r = client.get(f"/api/v1/no-such-thing/{tail}")
        assert r.status_code == 404
        assert _error(r)["code"] == "not_found"


def test_an_unknown_api_path_is_404_for_a_signed_in_client_too(api):
    r = api.post("/api/v1/orders/batchx", {"items": []}, format="json")
    assert r.status_code == 404 and _error(r)["code"] == "not_found"


def test_an_unknown_operator_page_stays_html(client):
    r = client.get("/no-such-page/")
    assert r.status_code == 404
    assert r["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("get", "/api/v1/orders/batch", "POST"),
        ("put", "/api/v1/customers/batch", "POST"),
        ("delete", "/api/v1/customers/", "GET"),
        ("post", "/api/v1/customers/c1", "GET"),
        ("patch", "/api/v1/events/batch", "POST"),
    ],
)
def test_a_wrong_method_is_405_with_allow(api, method, path, allowed):
    r = getattr(api, method)(path, {}, format="json")
    assert r.status_code == 405, r.content
    assert _error(r)["code"] == "method_not_allowed"
    assert allowed in [m.strip() for m in r["Allow"].split(",")]


def test_a_wrong_method_without_credentials_is_still_401(client):
    r = client.delete("/api/v1/customers/")
    assert r.status_code == 401 and _error(r)["code"] == "not_authenticated"


def test_a_key_lacking_the_scope_still_gets_403_on_a_real_method(make_api):
    r = make_api(["customers:read"]).post("/api/v1/orders/batch", {"items": []}, format="json")
    assert r.status_code == 403 and _error(r)["code"] == "permission_denied"


def test_a_server_error_under_api_is_json():
    r = handler500(RequestFactory().get("/api/v1/customers"))
    assert r.status_code == 500 and _error(r)["code"] == "server_error"
    assert handler500(RequestFactory().get("/customers/"))["Content-Type"].startswith("text/html")


def test_an_operator_form_over_the_limit_is_413_html(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    r = client.post("/login/", {"username": "x", "password": "y" * 5000})
    assert r.status_code == 413
    assert r["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("debug", [True, False])
def test_an_api_write_missing_its_slash_is_a_json_404_not_a_redirect(api, settings, debug):
    settings.DEBUG = debug  # with DEBUG on, Django's slash redirect raised RuntimeError (a 500)
    r = api.post("/api/v1/customers", {"external_id": "c1"}, format="json")
    assert r.status_code == 404
    if not debug:  # with DEBUG on, Django shows its technical 404 page instead of any handler
        assert _error(r)["code"] == "not_found"
    assert api.get("/api/v1/customers").status_code == 301  # reads still follow the slash


def test_a_refusal_quoting_an_unpaired_surrogate_renders_instead_of_a_500(api):
    """An envelope key that is a lone surrogate is refused, and the refusal quotes it:
    the renderer replaces what UTF-8 cannot encode (it raised UnicodeEncodeError)."""
    body = b'{"items": [], "\\udc00": 1}'
    r = api.post("/api/v1/orders/batch", data=body, content_type="application/json")
    assert r.status_code == 400, r.content
    assert r.json()["error"]["code"] in ("invalid", "malformed_request")


def test_an_infinite_number_in_event_properties_is_a_row_error(api):
    from users.models import Event

    from ..users.factories import CustomerFactory

    CustomerFactory(external_id="u-inf")
    body = (
        b'{"items": [{"customer": "u-inf", "type": "login", "occurred_at": "2026-03-01T08:00:00Z",'
        b' "properties": {"n": 1e999999}},'
        b' {"customer": "u-inf", "type": "login", "occurred_at": "2026-03-02T08:00:00Z", "properties": {"n": 1}}]}'
    )
    r = api.post("/api/v1/events/batch", data=body, content_type="application/json")
    assert r.status_code == 200, r.content
    errors = r.json()["errors"]
    assert [e["index"] for e in errors] == [0] and "finite" in errors[0]["message"]
    assert Event.objects.filter(customer__external_id="u-inf").count() == 1

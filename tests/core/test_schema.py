"""The OpenAPI schema types the points, rewards and segments responses (the bot and the
app generate their clients from it): real object schemas, errors in the error shape."""

import pytest
import yaml
from django.core.management import call_command

pytestmark = pytest.mark.django_db

# operation → (success status, the properties its body must declare)
EXPECTED = {
    ("/api/v1/points/entries", "post"): ("201", {"customer", "entry", "balance_after"}),
    ("/api/v1/points/entries/batch", "post"): ("200", {"created", "updated", "unchanged", "errors", "entries"}),
    ("/api/v1/customers/{external_id}/points", "get"): (
        "200",
        {
            "customer",
            "balance",
            "expiring_soon",
            "expiring_before",
            "growth_value",
            "level",
            "badges",
            "recent_entries",
        },
    ),
    ("/api/v1/rewards/", "get"): ("200", {"results"}),
    ("/api/v1/rewards/{reward_id}/redeem", "post"): ("201", {"customer", "redemption", "balance_after"}),
    ("/api/v1/redemptions/{redemption_id}/cancel", "post"): ("200", {"redemption"}),
    ("/api/v1/segments/", "get"): ("200", {"results"}),
    ("/api/v1/segments/{slug}/members", "get"): ("200", {"results", "next", "previous"}),
}
# nested bodies: component → properties
NESTED = {
    "PointsEntryOut": {
        "id",
        "kind",
        "amount",
        "balance_after",
        "reason",
        "source",
        "idempotency_key",
        "created_at",
        "expires_at",
    },
    "RedemptionOut": {"id", "reward", "points", "status", "idempotency_key", "created_at", "cancelled_at"},
    "RewardOut": {"id", "name", "description", "points_price", "stock", "valid_until"},
    "SegmentOut": {"slug", "name", "kind", "size", "computed_at"},
    "CustomerLevelOut": {"name", "threshold", "benefits", "growth_value", "next", "downgrade_pending_since"},
    "PointsBatchEntryOut": {"index", "customer", "replayed", "entry"},
    "PointsRowErrorOut": {"index", "field", "message", "code"},
}


@pytest.fixture(scope="module")
def schema(django_db_blocker, tmp_path_factory):
    out = tmp_path_factory.mktemp("schema") / "schema.yaml"
    with django_db_blocker.unblock():
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    return yaml.safe_load(out.read_text())


def _resolve(schema, node):
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _untyped_objects(schema, node, path, seen):
    """Paths of object schemas that declare neither properties nor what their values are."""
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if name in seen:
                return []
            seen.add(name)
            return _untyped_objects(schema, schema["components"]["schemas"][name], f"{path}→{name}", seen)
        found = []
        if (
            node.get("type") == "object"
            and not node.get("properties")
            and node.get("additionalProperties") in (None, {})
        ):
            found.append(path)
        for key, value in node.items():
            found += _untyped_objects(schema, value, f"{path}.{key}", seen)
        return found
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _untyped_objects(schema, v, f"{path}[{i}]", seen)]
    return []


def _body(op, status):
    return op["responses"][status]["content"]["application/json"]["schema"]


@pytest.mark.parametrize(("path", "method"), list(EXPECTED))
def test_success_responses_are_typed_objects(schema, path, method):
    status, props = EXPECTED[(path, method)]
    op = schema["paths"][path][method]
    body = _resolve(schema, _body(op, status))
    assert body["type"] == "object"
    assert set(body["properties"]) >= props
    assert _untyped_objects(schema, _body(op, status), f"{path} {status}", set()) == []


@pytest.mark.parametrize(("path", "method"), list(EXPECTED))
def test_error_responses_have_the_error_shape(schema, path, method):
    op = schema["paths"][path][method]
    errors = {s: r for s, r in op["responses"].items() if s.startswith(("4", "5"))}
    assert {"401", "403"} <= set(errors)
    for status, response in errors.items():
        body = _resolve(schema, response["content"]["application/json"]["schema"])
        assert set(body["properties"]) == {"error"}, status
        error = _resolve(schema, body["properties"]["error"])
        assert set(error["properties"]) == {"code", "message", "details"} and set(error["required"]) == {
            "code",
            "message",
            "details",
        }


def test_the_refusals_clients_handle_are_declared(schema):
    paths = schema["paths"]
    assert {"400", "404", "409"} <= set(paths["/api/v1/points/entries"]["post"]["responses"])
    assert {"400", "422"} <= set(paths["/api/v1/points/entries/batch"]["post"]["responses"])
    assert {"400", "404", "409"} <= set(paths["/api/v1/rewards/{reward_id}/redeem"]["post"]["responses"])
    assert "404" in paths["/api/v1/segments/{slug}/members"]["get"]["responses"]


@pytest.mark.parametrize("name", list(NESTED))
def test_nested_bodies_declare_their_fields(schema, name):
    component = schema["components"]["schemas"][name]
    assert component["type"] == "object" and set(component["properties"]) == NESTED[name]


def test_segment_list_response_matches_its_model(api):
    from segments.api import SegmentListOut
    from tests.segments.factories import segment

    segment("big-spenders", {"field": "monetary", "op": "gte", "value": 5000})
    body = api.get("/api/v1/segments/").json()
    assert body["results"]
    SegmentListOut.model_validate(body)

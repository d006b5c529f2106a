"""REST API v1: segments, members, and the segment parts of the customer list and profile."""

from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from segments import services
from segments.models import CustomerScore
from segments.services import segment_save

from .factories import AS_OF, CustomerFactory, OrderFactory, generate_history


@pytest.fixture
def run(db):
    generate_history(customers=120, orders=1200, seed=9)
    return services.recompute_sync(as_of=AS_OF)


def scores(run):
    return list(CustomerScore.objects.filter(run=run).select_related("customer"))


def walk(api, url, **params) -> list[dict]:
    """Follows the cursor to the end; returns every item."""
    items, pages = [], 0
    response = api.get(url, params)
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        items += body["results"]
        pages += 1
        if not body["next"]:
            break
        response = api.get(body["next"])
    walk.pages = pages
    return items


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code and body["error"]["message"]


def test_segment_list_has_built_ins_with_sizes(run, api):
    segment_save(name="Big spenders", definition={"field": "monetary", "op": "gte", "value": 5000})
    response = api.get("/api/v1/segments/")
    assert response.status_code == 200
    rows = {row["slug"]: row for row in response.json()["results"]}
    all_scores = scores(run)
    for prefix, column in (
        ("stage", "stage"),
        ("tier", "tier"),
        ("class", "operating_class"),
        ("rfm", "rfm_group"),
        ("rfm-segment", "rfm_segment"),
    ):
        counts = Counter(getattr(s, column) for s in all_scores if getattr(s, column))
        for value, n in counts.items():
            assert rows[f"{prefix}-{value}"]["size"] == n
            assert rows[f"{prefix}-{value}"]["kind"] == "builtin"
    assert datetime.fromisoformat(rows["stage-mature"]["computed_at"]) == AS_OF
    assert {
        "stage-prospect",
        "stage-churned",
        "tier-super_vip",
        "rfm-high_value",
        "rfm-general",
        "rfm-segment-champions",
        "rfm-segment-other",
        "class-churn_risk",
    } <= set(rows)
    custom = rows["big-spenders"]
    assert custom["kind"] == "dynamic"
    assert custom["size"] == sum(1 for s in all_scores if s.monetary >= 5000) > 0


@pytest.mark.parametrize("stage", ["mature", "growing", "churned", "prospect"])
def test_stage_members_are_cursor_paginated_exactly(run, api, stage):
    expected = {s.customer.external_id for s in scores(run) if s.stage == stage}
    assert expected
    items = walk(api, f"/api/v1/segments/stage-{stage}/members", page_size=7)
    ids = [item["external_id"] for item in items]
    assert len(ids) == len(set(ids)) and set(ids) == expected
    assert walk.pages == -(-len(expected) // 7)
    assert {datetime.fromisoformat(item["since"]) for item in items} == {AS_OF}


def test_rfm_segment_members_are_not_confused_with_rfm_groups(run, api):
    expected = {s.customer.external_id for s in scores(run) if s.rfm_segment == "champions"}
    assert {i["external_id"] for i in walk(api, "/api/v1/segments/rfm-segment-champions/members")} == expected


def test_custom_segment_members(run, api):
    segment = segment_save(name="Frequent", definition={"field": "frequency", "op": "gte", "value": 3})
    expected = {s.customer.external_id for s in scores(run) if s.frequency >= 3}
    items = walk(api, "/api/v1/segments/frequent/members", page_size=5)
    assert {i["external_id"] for i in items} == expected and len(items) == len(expected) == segment.size
    # Saved after the run: members since the save.
    assert {datetime.fromisoformat(i["since"]) for i in items} == {segment.computed_at}


def test_unknown_segment_is_a_404_in_the_error_shape(run, api):
    assert_error(api.get("/api/v1/segments/no-such-thing/members"), 404, "not_found")
    assert_error(api.get("/api/v1/segments/stage-zombie/members"), 404, "not_found")


def test_built_in_members_before_any_run_are_empty(db, api):
    customer = CustomerFactory()
    OrderFactory(customer=customer, occurred_at=AS_OF - timedelta(days=1))
    response = api.get("/api/v1/segments/stage-mature/members")
    assert response.status_code == 200 and response.json()["results"] == []
    response = api.get("/api/v1/customers/", {"segment": "stage-mature"})
    assert response.status_code == 200 and response.json()["results"] == []
    assert api.get("/api/v1/customers/", {"stage": "mature"}).json()["results"] == []


def test_segments_need_the_scope(run, make_api):
    client = make_api(["customers:read"])
    assert_error(client.get("/api/v1/segments/"), 403, "permission_denied")
    assert_error(client.get("/api/v1/segments/stage-mature/members"), 403, "permission_denied")
    assert make_api(["segments:read"]).get("/api/v1/segments/").status_code == 200


def test_customer_list_filters_by_stage_tier_and_segment(run, api):
    all_scores = scores(run)
    tiers = Counter(s.tier for s in all_scores if s.stage == "mature")
    tier = tiers.most_common(1)[0][0]
    expected = {s.customer.external_id for s in all_scores if s.stage == "mature" and s.tier == tier}
    got = {c["external_id"] for c in walk(api, "/api/v1/customers/", stage="mature", tier=tier, page_size=10)}
    assert got == expected and expected
    high = {s.customer.external_id for s in all_scores if s.rfm_group == "high_value"}
    assert {c["external_id"] for c in walk(api, "/api/v1/customers/", segment="rfm-high_value")} == high


@pytest.mark.parametrize(("params", "field"), [({"stage": "zombie"}, "stage"), ({"tier": "gold"}, "tier")])
def test_a_bad_filter_value_is_a_400_in_the_error_shape(run, api, params, field):
    response = api.get("/api/v1/customers/", params)
    assert_error(response, 400, "invalid_filter")
    assert field in response.json()["error"]["details"]


def test_profile_has_the_segment_sections(run, api):
    score = (
        CustomerScore.objects.filter(run=run, p_alive__isnull=False, frequency__gt=1)
        .select_related("customer")
        .order_by("customer_id")
        .first()
    )
    segment_save(name="Frequent", definition={"field": "frequency", "op": "gte", "value": 1})
    body = api.get(f"/api/v1/customers/{score.customer.external_id}").json()
    assert body["external_id"] == score.customer.external_id
    rfm = body["rfm"]
    assert {"recency_days", "frequency", "monetary", "r_score", "f_score", "m_score", "group"} <= set(rfm)
    assert (rfm["recency_days"], rfm["frequency"], Decimal(rfm["monetary"])) == (
        score.recency_days,
        score.frequency,
        score.monetary,
    )
    assert (rfm["r_score"], rfm["f_score"], rfm["m_score"], rfm["group"]) == (
        score.r_score,
        score.f_score,
        score.m_score,
        score.rfm_group,
    )
    assert isinstance(rfm["monetary"], str)
    assert body["tier"] == score.tier and body["stage"] == score.stage
    churn = body["churn"]
    assert set(churn) == {"p_alive", "expected_purchases_90d", "expected_order_value", "clv"}
    assert churn["p_alive"] == pytest.approx(score.p_alive, abs=1e-4)
    assert Decimal(churn["clv"]) == score.clv and isinstance(churn["expected_order_value"], str)
    assert f"stage-{score.stage}" in body["segments"] and f"tier-{score.tier}" in body["segments"]
    assert "frequent" in body["segments"]


def test_profile_of_a_customer_never_scored(run, api):
    customer = CustomerFactory()
    body = api.get(f"/api/v1/customers/{customer.external_id}").json()
    assert (body["rfm"], body["tier"], body["stage"], body["churn"]) == (None, None, None, None)
    assert body["segments"] == []

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from incentives import services
from incentives.models import PointsAccount, PointsEntry, Redemption, Reward

from .factories import CustomerFactory, RewardFactory, seed_defaults

pytestmark = pytest.mark.django_db

ENTRIES = "/api/v1/points/entries"


@pytest.fixture(autouse=True)
def _defaults():
    seed_defaults()


@pytest.fixture
def customer():
    return CustomerFactory(external_id="cust-1")


def post_entry(api, **overrides):
    body = {"customer": "cust-1", "kind": "earn", "amount": 100, "reason": "survey", "idempotency_key": "k-1"}
    body.update(overrides)
    body = {k: v for k, v in body.items() if v is not ...}
    return api.post(ENTRIES, body, format="json")


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code and body["error"]["message"]
    return body["error"]


# --- POST /points/entries -----------------------------------------------------------


def test_earn_then_spend(api, customer):
    r = post_entry(api)
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["customer"] == "cust-1" and body["balance_after"] == 100
    entry = body["entry"]
    assert set(entry) >= {
        "id",
        "kind",
        "amount",
        "balance_after",
        "reason",
        "source",
        "idempotency_key",
        "created_at",
        "expires_at",
    }
    assert (entry["kind"], entry["amount"], entry["balance_after"], entry["idempotency_key"], entry["source"]) == (
        "earn",
        100,
        100,
        "k-1",
        "api",
    )
    assert entry["expires_at"] is not None and "Idempotent-Replayed" not in r.headers
    r = post_entry(api, kind="spend", amount=30, idempotency_key="k-2")
    assert r.status_code == 201
    assert (r.json()["entry"]["amount"], r.json()["balance_after"]) == (-30, 70)
    assert PointsAccount.objects.get(customer=customer).balance == 70


def test_replay_answers_the_first_result(api, customer):
    first = post_entry(api)
    replay = post_entry(api)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert PointsEntry.objects.count() == 1
    assert PointsAccount.objects.get(customer=customer).balance == 100


def test_reused_key_with_a_different_body_is_409(api, customer):
    post_entry(api)
    err = assert_error(post_entry(api, amount=101), 409, "idempotency_key_reused")
    assert "idempotency_key" in err["message"]
    assert err["details"] == {"idempotency_key": "k-1"}  # the client's own key
    assert PointsEntry.objects.count() == 1


def test_overspend_is_409_and_writes_nothing(api, customer):
    post_entry(api, amount=50)
    err = assert_error(post_entry(api, kind="spend", amount=51, idempotency_key="k-2"), 409, "insufficient_points")
    assert err["details"] == {"balance": 50, "requested": 51}
    assert PointsEntry.objects.count() == 1
    assert PointsAccount.objects.get(customer=customer).balance == 50


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": 1.5}, "amount"),
        ({"amount": "10"}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": ...}, "amount"),
        ({"amount": 10**9}, "amount"),
        ({"kind": "expire"}, "kind"),
        ({"kind": "adjust"}, "kind"),
        ({"reason": ""}, "reason"),
        ({"reason": ...}, "reason"),
        ({"idempotency_key": ...}, "idempotency_key"),
        ({"idempotency_key": "has space"}, "idempotency_key"),
        ({"customer": ...}, "customer"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_input_is_400_with_the_field_and_writes_nothing(api, customer, overrides, field):
    err = assert_error(post_entry(api, **overrides), 400, "invalid")
    assert field in [e["field"] for e in err["details"]["errors"]]
    assert not PointsEntry.objects.exists()


def test_malformed_json_is_400(api, customer):
    r = api.post(ENTRIES, "{not json", content_type="application/json")
    assert_error(r, 400, "malformed_request")


def test_unknown_customer_is_404(api, customer):
    assert_error(post_entry(api, customer="nobody"), 404, "not_found")
    assert not PointsEntry.objects.exists()


def test_key_without_points_write_scope_is_403(make_api, customer):
    client = make_api(["customers:read", "customers:write"])
    assert_error(post_entry(client), 403, "permission_denied")
    assert not PointsEntry.objects.exists()


def test_no_key_is_401(client, customer):
    r = client.post(ENTRIES, {}, content_type="application/json")
    assert r.status_code == 401


# --- GET /customers/{id}/points and the profile ----------------------------------------


def test_customer_points_shape(api, customer):
    post_entry(api, amount=120)
    post_entry(api, kind="spend", amount=20, idempotency_key="k-2")
    r = api.get("/api/v1/customers/cust-1/points")
    assert r.status_code == 200
    body = r.json()
    assert set(body) >= {"customer", "balance", "expiring_soon", "level", "badges", "recent_entries"}
    assert (body["customer"], body["balance"], body["expiring_soon"], body["badges"]) == ("cust-1", 100, 0, [])
    assert [e["amount"] for e in body["recent_entries"]] == [-20, 120]  # newest first
    assert body["level"] is None  # no rule-earned growth yet, levels move in the worker


def test_customer_points_level_badges_and_expiring_soon(api, customer):
    from incentives.models import Badge, CustomerBadge, IncentivePolicy, Level

    IncentivePolicy.objects.update_or_create(pk=1, defaults={"expiry_months": 12, "reminder_days": 90})
    now = timezone.now()
    PointsAccount.objects.create(customer=customer, growth_value=1200, level=Level.objects.get(threshold=1000))
    CustomerBadge.objects.create(customer=customer, badge=Badge.objects.get(code="content-master-10"), awarded_at=now)
    services.points_post(
        customer=customer, kind="earn", amount=40, reason="old", idempotency_key="old", now=now - timedelta(days=365)
    )  # lapses at the start of a month within ~62 days
    body = api.get("/api/v1/customers/cust-1/points").json()
    assert (body["balance"], body["expiring_soon"]) == (40, 40)
    assert body["level"]["threshold"] == 1000 and body["level"]["next"]["threshold"] == 5000
    assert [b["code"] for b in body["badges"]] == ["content-master-10"]


def test_customer_points_unknown_customer_is_404(api):
    assert_error(api.get("/api/v1/customers/nobody/points"), 404, "not_found")


def test_customer_profile_carries_points_level_badges(api, customer):
    post_entry(api, amount=70)
    r = api.get("/api/v1/customers/cust-1")
    assert r.status_code == 200
    body = r.json()
    assert body["points"] == {"balance": 70, "expiring_soon": 0}
    assert body["level"] is None and body["badges"] == []


# --- rewards and redemptions --------------------------------------------------------------


def _redeem(api, reward_id, key="r-1", customer="cust-1"):
    return api.post(
        f"/api/v1/rewards/{reward_id}/redeem", {"customer": customer, "idempotency_key": key}, format="json"
    )


def test_reward_list_shows_available_rewards(api):
    shown = RewardFactory(name="Mug", points_price=300)
    RewardFactory(name="Sold out", stock=0)
    RewardFactory(name="Expired", valid_until=timezone.now() - timedelta(days=1))
    RewardFactory(name="Off", is_active=False)
    unlimited = RewardFactory(name="Coupon", points_price=50, stock=None)
    r = api.get("/api/v1/rewards/")
    assert r.status_code == 200
    assert [(x["id"], x["name"], x["points_price"], x["stock"]) for x in r.json()["results"]] == [
        (unlimited.pk, "Coupon", 50, None),
        (shown.pk, "Mug", 300, 10),
    ]


def test_redeem_success_and_replay(api, customer):
    post_entry(api, amount=500)
    reward = RewardFactory(points_price=200, stock=1)
    r = _redeem(api, reward.pk)
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["balance_after"] == 300 and body["customer"] == "cust-1"
    assert (body["redemption"]["reward"], body["redemption"]["points"], body["redemption"]["status"]) == (
        reward.pk,
        200,
        "completed",
    )
    replay = _redeem(api, reward.pk)  # answers the first result even though the stock is now 0
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == body
    reward.refresh_from_db()
    assert (reward.stock, Redemption.objects.count(), PointsAccount.objects.get(customer=customer).balance) == (
        0,
        1,
        300,
    )
    assert_error(_redeem(api, reward.pk, key="r-2"), 409, "out_of_stock")


def test_redeem_refusals(api, customer):
    post_entry(api, amount=150)
    before = PointsEntry.objects.count()
    out = RewardFactory(stock=0)
    assert_error(_redeem(api, out.pk), 409, "out_of_stock")
    expired = RewardFactory(valid_until=timezone.now() - timedelta(minutes=1))
    assert_error(_redeem(api, expired.pk), 409, "reward_unavailable")
    assert_error(_redeem(api, 999_999), 404, "not_found")
    pricey = RewardFactory(points_price=151, stock=1)
    err = assert_error(_redeem(api, pricey.pk), 409, "insufficient_points")
    assert err["details"] == {"balance": 150, "requested": 151}
    assert_error(_redeem(api, pricey.pk, customer="nobody"), 404, "not_found")
    assert_error(api.post(f"/api/v1/rewards/{pricey.pk}/redeem", {"customer": "cust-1"}, format="json"), 400, "invalid")
    assert PointsEntry.objects.count() == before and not Redemption.objects.exists()
    assert Reward.objects.get(pk=pricey.pk).stock == 1


def test_redeem_needs_points_write(make_api, customer):
    reward = RewardFactory()
    assert_error(_redeem(make_api(["customers:read"]), reward.pk), 403, "permission_denied")


def test_cancel_redemption(api, customer):
    post_entry(api, amount=500)
    reward = RewardFactory(points_price=200, stock=1)
    redemption_id = _redeem(api, reward.pk).json()["redemption"]["id"]
    r = api.post(f"/api/v1/redemptions/{redemption_id}/cancel")
    assert r.status_code == 200
    assert r.json()["redemption"]["status"] == "cancelled" and r.json()["redemption"]["cancelled_at"]
    assert (Reward.objects.get(pk=reward.pk).stock, PointsAccount.objects.get(customer=customer).balance) == (1, 500)
    again = api.post(f"/api/v1/redemptions/{redemption_id}/cancel")
    assert again.status_code == 200 and again.json()["redemption"]["status"] == "cancelled"
    assert (Reward.objects.get(pk=reward.pk).stock, PointsAccount.objects.get(customer=customer).balance) == (1, 500)
    assert_error(api.post("/api/v1/redemptions/999999/cancel"), 404, "not_found")


def test_replayed_entry_keeps_its_expiry_rendering(api, customer):
    first = post_entry(api).json()["entry"]
    replay = post_entry(api).json()["entry"]
    assert first["expires_at"] == replay["expires_at"]
    assert datetime.fromisoformat(first["expires_at"]).tzinfo is not None
    assert datetime.fromisoformat(first["expires_at"]) > datetime(2026, 1, 1, tzinfo=UTC)


def test_ids_beyond_the_integer_range_are_404(api, customer):
    post_entry(api, amount=500)
    assert_error(_redeem(api, 10**30), 404, "not_found")
    assert_error(api.post(f"/api/v1/redemptions/{10**30}/cancel"), 404, "not_found")


def test_customer_points_query_count_is_pinned(api, customer, django_assert_max_num_queries):
    for i in range(30):
        post_entry(api, amount=10, idempotency_key=f"k-{i}")
    with django_assert_max_num_queries(12):
        r = api.get("/api/v1/customers/cust-1/points")
    assert len(r.json()["recent_entries"]) == 20


# --- the response schemas hold to the real responses ---------------------------------------


def test_every_response_matches_its_declared_schema(api, customer):
    """The OpenAPI schema is generated from these models (extra keys forbidden), so a key a
    view adds, drops or renames without the model fails here."""
    from core.schema import ErrorOut
    from incentives import api as points_api
    from incentives.models import Badge, CustomerBadge, Level

    PointsAccount.objects.create(customer=customer, growth_value=1200, level=Level.objects.get(threshold=1000))
    CustomerBadge.objects.create(
        customer=customer, badge=Badge.objects.get(code="content-master-10"), awarded_at=timezone.now()
    )
    posted = post_entry(api, amount=500)
    assert posted.status_code == 201
    points_api.PointsPostedOut.model_validate(posted.json())
    batch = api.post(
        f"{ENTRIES}/batch",
        {
            "items": [
                {"customer": "cust-1", "kind": "spend", "amount": 10, "reason": "x", "idempotency_key": "b-1"},
                {"customer": "cust-1", "kind": "spend", "amount": 10_000, "reason": "x", "idempotency_key": "b-2"},
                {"customer": "nobody", "kind": "earn", "amount": 1, "reason": "x", "idempotency_key": "b-3"},
            ]
        },
        format="json",
    )
    assert batch.status_code == 200 and len(batch.json()["errors"]) == 2
    points_api.PointsBatchOut.model_validate(batch.json())
    summary = api.get("/api/v1/customers/cust-1/points").json()
    assert summary["level"]["next"] and summary["badges"] and summary["recent_entries"]
    points_api.CustomerPointsOut.model_validate(summary)
    RewardFactory(points_price=100, stock=None)
    reward = RewardFactory(points_price=100, stock=3, valid_until=timezone.now() + timedelta(days=3))
    rewards = api.get("/api/v1/rewards/").json()
    assert len(rewards["results"]) == 2
    points_api.RewardListOut.model_validate(rewards)
    redeemed = _redeem(api, reward.pk)
    assert redeemed.status_code == 201
    points_api.RedeemedOut.model_validate(redeemed.json())
    cancelled = api.post(f"/api/v1/redemptions/{redeemed.json()['redemption']['id']}/cancel")
    assert cancelled.status_code == 200
    points_api.RedemptionCancelledOut.model_validate(cancelled.json())
    for error in [
        post_entry(api, kind="spend", amount=99_999, idempotency_key="k-9"),
        _redeem(api, 999_999),
        api.post(
            f"{ENTRIES}/batch",
            {
                "items": [{"customer": "nobody", "kind": "earn", "amount": 1, "reason": "x", "idempotency_key": "b"}],
                "atomic": True,
            },
            format="json",
        ),
    ]:
        assert error.status_code in (409, 404, 422)
        ErrorOut.model_validate(error.json())

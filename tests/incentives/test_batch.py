"""Posting many entries at once: ``services.points_post_batch`` and
``POST /api/v1/points/entries/batch``."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.errors import ApplicationError
from incentives import services
from incentives.models import IncentivePolicy, PointsAccount, PointsEntry

from .factories import CustomerFactory, seed_defaults

pytestmark = pytest.mark.django_db

BATCH = "/api/v1/points/entries/batch"
T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _defaults():
    seed_defaults()
    IncentivePolicy.objects.filter(pk=1).update(expiry_months=12)


def req(c, kind, amount, key, reason="batch"):
    return services.EntryRequest(
        customer_id=c.pk, timezone=c.timezone, kind=kind, amount=amount, reason=reason, idempotency_key=key
    )


def balance(c) -> int:
    return PointsAccount.objects.get(customer=c).balance


def ledger(c) -> list[tuple]:
    return list(PointsEntry.objects.filter(customer=c).order_by("id").values_list("kind", "amount", "balance_after"))


# --- the service ------------------------------------------------------------------------


def test_requests_apply_in_order_and_see_each_other():
    a, b = CustomerFactory(), CustomerFactory()
    outcomes = services.points_post_batch(
        requests=[
            req(a, "earn", 100, "a1"),
            req(b, "earn", 5, "b1"),
            req(a, "spend", 60, "a2"),
            req(a, "spend", 60, "a3"),
            req(b, "spend", 5, "b2"),
            req(a, "earn", 20, "a4"),
            req(a, "spend", 60, "a5"),
        ],
        now=T0,
    )
    assert [o.error.code if o.error else o.entry.balance_after for o in outcomes] == [
        100,
        5,
        40,
        "insufficient_points",
        0,
        60,
        0,
    ]
    assert outcomes[3].error.details == {"balance": 40, "requested": 60}
    assert ledger(a) == [("earn", 100, 100), ("spend", -60, 40), ("earn", 20, 60), ("spend", -60, 0)]
    assert ledger(b) == [("earn", 5, 5), ("spend", -5, 0)]
    assert (balance(a), balance(b)) == (0, 0)
    assert all(o.entry.pk for o in outcomes if o.entry)  # saved, with their ids
    assert services.ledger_reconcile() == []


def test_a_key_repeated_in_one_batch_replays_or_conflicts():
    c = CustomerFactory()
    outcomes = services.points_post_batch(
        requests=[
            req(c, "earn", 10, "k"),
            req(c, "earn", 10, "k"),
            req(c, "earn", 11, "k"),
        ],
        now=T0,
    )
    assert not outcomes[0].replayed and outcomes[1].replayed and outcomes[1].entry is outcomes[0].entry
    assert outcomes[2].error.code == "idempotency_key_reused"
    assert ledger(c) == [("earn", 10, 10)]


def test_a_replay_compares_the_reason_as_stored_stripped():
    c = CustomerFactory()
    (first,) = services.points_post_batch(requests=[req(c, "earn", 5, "k", reason="survey")], now=T0)
    (again,) = services.points_post_batch(requests=[req(c, "earn", 5, "k", reason="  survey ")], now=T0)
    assert again.replayed and again.entry.pk == first.entry.pk and first.entry.reason == "survey"


def test_replaying_a_batch_writes_nothing_and_answers_the_first_entries():
    c = CustomerFactory()
    batch = [req(c, "earn", 30, "x"), req(c, "spend", 10, "y")]
    first = services.points_post_batch(requests=batch, now=T0)
    again = services.points_post_batch(requests=batch, now=T0)
    assert [o.replayed for o in again] == [True, True]
    assert [o.entry.pk for o in again] == [o.entry.pk for o in first]
    assert ledger(c) == [("earn", 30, 30), ("spend", -10, 20)]


def test_lapsed_points_expire_before_the_first_spend_in_a_batch():
    c = CustomerFactory(timezone="UTC")
    services.points_post_batch(requests=[req(c, "earn", 100, "old")], now=datetime(2026, 1, 10, tzinfo=UTC))
    services.points_post_batch(requests=[req(c, "earn", 20, "new")], now=datetime(2026, 6, 1, tzinfo=UTC))
    after = datetime(2027, 2, 5, tzinfo=UTC)  # "old" lapsed on 2027-02-01
    outcomes = services.points_post_batch(
        requests=[
            req(c, "spend", 50, "s1"),
            req(c, "spend", 15, "s2"),
            req(c, "spend", 5, "s3"),
            req(c, "spend", 1, "s4"),
        ],
        now=after,
    )
    assert outcomes[0].error.code == "insufficient_points" and outcomes[0].error.details["balance"] == 20
    assert [o.error.code if o.error else o.entry.balance_after for o in outcomes[1:]] == [5, 0, "insufficient_points"]
    assert ledger(c)[2:] == [("expire", -100, 20), ("spend", -15, 5), ("spend", -5, 0)]  # expired once
    assert services.points_expire(now=after) == 0
    assert services.ledger_reconcile() == []


def test_atomic_batch_with_one_refusal_writes_nothing():
    c = CustomerFactory()
    with pytest.raises(ApplicationError) as exc:
        services.points_post_batch(requests=[req(c, "earn", 10, "a"), req(c, "spend", 11, "b")], atomic=True, now=T0)
    assert exc.value.status_code == 422 and exc.value.code == "batch_rejected"
    assert exc.value.details["errors"] == [
        {
            "index": 1,
            "field": "amount",
            "code": "insufficient_points",
            "message": "Not enough points: the balance would go below zero.",
        }
    ]
    assert not PointsEntry.objects.exists() and not PointsAccount.objects.exists()


@pytest.mark.parametrize(
    ("kind", "amount", "code"),
    [
        ("earn", 0, "invalid_amount"),
        ("spend", -5, "invalid_amount"),
        ("earn", 1.5, "invalid_amount"),
        ("earn", True, "invalid_amount"),
        ("earn", services.MAX_POINTS_PER_ENTRY + 1, "invalid_amount"),
        ("gift", 5, "invalid_kind"),
        ("adjust", 0, "invalid_amount"),
    ],
)
def test_invalid_requests_are_refused_one_by_one(kind, amount, code):
    c = CustomerFactory()
    outcomes = services.points_post_batch(requests=[req(c, "earn", 10, "ok"), req(c, kind, amount, "bad")], now=T0)
    assert outcomes[0].entry.balance_after == 10
    assert outcomes[1].error.code == code and outcomes[1].entry is None
    assert ledger(c) == [("earn", 10, 10)]


def test_a_blank_reason_is_refused():
    c = CustomerFactory()
    (outcome,) = services.points_post_batch(requests=[req(c, "earn", 10, "k", reason="  ")], now=T0)
    assert outcome.error.code == "reason_required" and not PointsEntry.objects.exists()


@pytest.mark.postgres  # SQLite caps the parameters of one statement, so its bulk inserts split
def test_the_query_count_does_not_grow_with_the_batch():
    customers = [CustomerFactory() for _ in range(30)]
    services.points_post_batch(requests=[req(c, "earn", 100, "seed") for c in customers], now=T0)

    def count(n):
        requests = [req(customers[i % 30], "spend" if i % 2 else "earn", 1, f"q{n}-{i}") for i in range(n)]
        with CaptureQueriesContext(connection) as ctx:
            services.points_post_batch(requests=requests, now=T0)
        return len(ctx.captured_queries)

    assert count(4) == count(300)


# --- the API ----------------------------------------------------------------------------


def item(customer="cust-1", kind="earn", amount=10, key="k-1", **extra):
    return {"customer": customer, "kind": kind, "amount": amount, "reason": "bench", "idempotency_key": key, **extra}


@pytest.fixture
def customer():
    return CustomerFactory(external_id="cust-1")


def test_batch_api_posts_and_reports_each_item(api, customer):
    CustomerFactory(external_id="cust-2")
    r = api.post(
        BATCH,
        {
            "items": [
                item(amount=50),
                item(customer="cust-2", amount=7, key="k-2"),
                item(kind="spend", amount=60, key="k-3"),
                item(kind="spend", amount=20, key="k-4"),
                item(customer="nobody", key="k-5"),
                item(amount=-1, key="k-6"),
            ]
        },
        format="json",
    )
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["created"], body["updated"], body["unchanged"]) == (3, 0, 0)
    assert [(e["field"], e.get("code")) for e in body["errors"]] == [
        ("amount", "insufficient_points"),
        ("customer", "not_found"),
        ("amount", None),
    ]
    assert [e["index"] for e in body["errors"]] == [2, 4, 5]
    assert [
        (e["index"], e["customer"], e["entry"]["amount"], e["entry"]["balance_after"]) for e in body["entries"]
    ] == [(0, "cust-1", 50, 50), (1, "cust-2", 7, 7), (3, "cust-1", -20, 30)]
    assert body["entries"][0]["entry"]["idempotency_key"] == "k-1"  # the client's key, not the stored one
    assert balance(customer) == 30


def test_batch_api_replay_is_unchanged_and_identical(api, customer):
    payload = {"items": [item(), item(kind="spend", amount=4, key="k-2")]}
    first = api.post(BATCH, payload, format="json").json()
    again = api.post(BATCH, payload, format="json").json()
    assert (again["created"], again["unchanged"]) == (0, 2)
    assert [e["entry"] for e in again["entries"]] == [e["entry"] for e in first["entries"]]
    assert all(e["replayed"] for e in again["entries"])
    assert PointsEntry.objects.count() == 2


def test_batch_api_shares_keys_with_the_single_endpoint(api, customer):
    api.post("/api/v1/points/entries", item(), format="json")
    body = api.post(BATCH, {"items": [item(), item(amount=11)]}, format="json").json()
    assert body["unchanged"] == 1
    assert body["errors"] == [
        {
            "index": 1,
            "field": "idempotency_key",
            "code": "idempotency_key_reused",
            "message": "This idempotency_key was already used with a different request.",
        }
    ]


def test_batch_api_atomic_rejects_everything_on_one_bad_item(api, customer):
    for bad in (
        item(kind="spend", amount=999, key="k-2"),
        item(customer="nobody", key="k-2"),
        item(amount="ten", key="k-2"),
    ):
        r = api.post(BATCH, {"items": [item(), bad], "atomic": True}, format="json")
        assert r.status_code == 422, r.content
        err = r.json()["error"]
        assert err["code"] == "batch_rejected" and [e["index"] for e in err["details"]["errors"]] == [1]
    assert not PointsEntry.objects.exists()


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ([], "malformed_request"),
        ({"entries": []}, "malformed_request"),
        ({"items": {}}, "malformed_request"),
        ({"items": [], "atomic": "yes"}, "malformed_request"),
        ({"items": [item(key=f"k{i}") for i in range(1001)]}, "batch_too_large"),
    ],
)
def test_batch_api_malformed_envelope_is_400(api, customer, payload, code):
    r = api.post(BATCH, payload, format="json")
    assert r.status_code == 400 and r.json()["error"]["code"] == code
    assert not PointsEntry.objects.exists()


def test_batch_api_row_shape_errors_name_the_field(api, customer):
    body = api.post(
        BATCH, {"items": [item(amount=1.5), item(key="bad key!"), item(extra=1), item(kind="gift")]}, format="json"
    ).json()
    assert [(e["index"], e["field"]) for e in body["errors"]] == [
        (0, "amount"),
        (1, "idempotency_key"),
        (2, "extra"),
        (3, "kind"),
    ]
    assert body["created"] == 0 and not PointsEntry.objects.exists()


def test_batch_api_needs_the_points_write_scope(make_api, customer):
    r = make_api(["customers:read", "customers:write"]).post(BATCH, {"items": [item()]}, format="json")
    assert r.status_code == 403 and r.json()["error"]["code"]
    assert not PointsEntry.objects.exists()

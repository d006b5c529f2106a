from datetime import UTC, date, datetime, timedelta

import pytest

from core.batch import validate_batch
from core.errors import ApplicationError, Conflict
from core.models import AuditEntry
from incentives import selectors, services
from incentives.models import (
    CustomerBadge,
    EarningRule,
    EntryKind,
    IncentivePolicy,
    Level,
    PointsAccount,
    PointsEntry,
    Redemption,
    Reward,
)
from users.rows import OrderRow
from users.services import orders_upsert_batch

from .factories import CustomerFactory, EventFactory, RewardFactory, seed_defaults

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _defaults():
    seed_defaults()
    IncentivePolicy.objects.filter(pk=1).update(expiry_months=12, reminder_days=30)


def earn(c, amount, key, at=T0, **kw):
    return services.points_post(
        customer=c, kind="earn", amount=amount, reason="test earn", idempotency_key=key, now=at, **kw
    )


def spend(c, amount, key, at=T0):
    return services.points_post(
        customer=c, kind="spend", amount=amount, reason="test spend", idempotency_key=key, now=at
    )


def balance(c) -> int:
    return PointsAccount.objects.get(customer=c).balance


def entries(c, **filters):
    return list(PointsEntry.objects.filter(customer=c, **filters).order_by("id"))


# --- earn / spend / adjust -----------------------------------------------------------


def test_earn_and_spend_move_balance_and_entries():
    c = CustomerFactory(timezone="UTC")
    e1 = earn(c, 100, "k1")
    e2 = spend(c, 30, "k2")
    assert (e1.replayed, e2.replayed) == (False, False)
    assert (e1.entry.amount, e1.entry.balance_after, e1.entry.kind) == (100, 100, EntryKind.EARN)
    assert (e2.entry.amount, e2.entry.balance_after, e2.entry.kind) == (-30, 70, EntryKind.SPEND)
    assert e1.entry.expires_at == datetime(2027, 2, 1, tzinfo=UTC)
    assert e2.entry.expires_at is None
    assert balance(c) == 70
    assert services.ledger_reconcile() == []


def test_adjust_by_operator_is_signed_audited_and_cannot_overdraw(make_user):
    operator = make_user("admin")
    c = CustomerFactory(timezone="UTC")
    earn(c, 100, "k1")
    up = services.points_post(
        customer=c, kind="adjust", amount=25, reason="goodwill", idempotency_key="adj1", operator=operator, now=T0
    )
    down = services.points_post(
        customer=c, kind="adjust", amount=-45, reason="correction", idempotency_key="adj2", operator=operator, now=T0
    )
    assert (up.entry.amount, down.entry.amount, balance(c)) == (25, -45, 80)
    assert up.entry.operator == operator and up.entry.expires_at is not None and down.entry.expires_at is None
    audits = AuditEntry.objects.filter(action="points.adjust", actor=operator).order_by("id")
    assert [a.changes for a in audits] == [
        {"customer": c.external_id, "amount": 25, "reason": "goodwill"},
        {"customer": c.external_id, "amount": -45, "reason": "correction"},
    ]
    assert [a.object_id for a in audits] == [str(up.entry.pk), str(down.entry.pk)]
    services.points_post(
        customer=c, kind="adjust", amount=25, reason="goodwill", idempotency_key="adj1", operator=operator, now=T0
    )  # a replay: no second audit row
    assert audits.count() == 2
    with pytest.raises(Conflict) as exc:
        services.points_post(
            customer=c, kind="adjust", amount=-81, reason="too much", idempotency_key="adj3", operator=operator, now=T0
        )
    assert exc.value.code == "insufficient_points"
    assert balance(c) == 80 and len(entries(c)) == 3


@pytest.mark.parametrize(
    ("kind", "amount", "code"),
    [
        ("earn", 0, "invalid_amount"),
        ("earn", -5, "invalid_amount"),
        ("spend", 0, "invalid_amount"),
        ("spend", -5, "invalid_amount"),
        ("adjust", 0, "invalid_amount"),
        ("earn", 1.5, "invalid_amount"),
        ("earn", True, "invalid_amount"),
        ("earn", "10", "invalid_amount"),
        ("earn", 10**8, "invalid_amount"),
        ("expire", 10, "invalid_kind"),
        ("reverse", 10, "invalid_kind"),
    ],
)
def test_points_post_rejects_bad_input_and_writes_nothing(kind, amount, code):
    c = CustomerFactory()
    with pytest.raises(ApplicationError) as exc:
        services.points_post(customer=c, kind=kind, amount=amount, reason="r", idempotency_key="k", now=T0)
    assert exc.value.code == code and exc.value.status_code == 400
    assert not PointsEntry.objects.exists()


def test_points_post_requires_a_reason():
    c = CustomerFactory()
    with pytest.raises(ApplicationError) as exc:
        services.points_post(customer=c, kind="earn", amount=5, reason="   ", idempotency_key="k", now=T0)
    assert exc.value.code == "reason_required"
    assert not PointsEntry.objects.exists()


def test_replay_returns_the_first_entry_and_writes_nothing_more():
    c = CustomerFactory()
    first = earn(c, 100, "same")
    again = earn(c, 100, "same", at=T0 + timedelta(hours=1))
    assert again.replayed is True
    assert again.entry.pk == first.entry.pk and again.entry.balance_after == 100
    assert len(entries(c)) == 1 and balance(c) == 100
    # the same key on another customer is another key
    other = CustomerFactory()
    assert earn(other, 100, "same").replayed is False


@pytest.mark.parametrize("change", [{"amount": 101}, {"kind": "spend"}, {"reason": "another reason"}])
def test_reused_key_with_a_different_body_is_a_conflict(change):
    c = CustomerFactory()
    earn(c, 100, "same")
    body = {"kind": "earn", "amount": 100, "reason": "test earn"} | change
    with pytest.raises(Conflict) as exc:
        services.points_post(customer=c, idempotency_key="same", now=T0, **body)
    assert exc.value.code == "idempotency_key_reused" and exc.value.status_code == 409
    assert len(entries(c)) == 1 and balance(c) == 100


def test_overspend_is_a_conflict_and_writes_nothing():
    c = CustomerFactory()
    earn(c, 50, "k1")
    with pytest.raises(Conflict) as exc:
        spend(c, 51, "k2")
    assert exc.value.code == "insufficient_points"
    assert exc.value.details == {"balance": 50, "requested": 51}
    assert len(entries(c)) == 1 and balance(c) == 50
    # the failed key is free: a later spend with it succeeds once points are there
    earn(c, 1, "k3")
    assert spend(c, 51, "k2").entry.balance_after == 0


def test_spend_by_a_customer_without_an_account_writes_nothing():
    c = CustomerFactory()
    with pytest.raises(Conflict):
        spend(c, 1, "k")
    assert not PointsAccount.objects.filter(customer=c).exists()
    assert not PointsEntry.objects.exists()


# --- expiry --------------------------------------------------------------------------


def test_fifo_expiry_across_lots_with_spends_in_between():
    c = CustomerFactory(timezone="UTC")
    earn(c, 100, "a", at=datetime(2026, 1, 10, tzinfo=UTC))  # lot A, lapses 2027-02-01
    earn(c, 50, "b", at=datetime(2026, 2, 10, tzinfo=UTC))  # lot B, lapses 2027-03-01
    spend(c, 30, "s1", at=datetime(2026, 3, 1, tzinfo=UTC))  # A 70 left
    earn(c, 40, "c", at=datetime(2026, 4, 10, tzinfo=UTC))  # lot C, lapses 2027-05-01
    spend(c, 90, "s2", at=datetime(2026, 5, 1, tzinfo=UTC))  # A 0, B 30, C 40
    assert balance(c) == 70

    # A lapses, but the spends consumed it all
    assert services.points_expire(now=datetime(2027, 2, 1, tzinfo=UTC)) == 0
    assert selectors.points_summary(customer=c, now=datetime(2027, 2, 1, tzinfo=UTC))["expiring_soon"] == 30
    spend(c, 10, "s3", at=datetime(2027, 2, 15, tzinfo=UTC))  # B 20, C 40
    # B lapses with 20 unconsumed
    at_b = datetime(2027, 3, 1, tzinfo=UTC)
    assert services.points_expire(now=at_b) == 1
    assert services.points_expire(now=at_b) == 0
    assert services.points_expire(now=at_b + timedelta(days=3)) == 0
    assert [e.amount for e in entries(c, kind="expire")] == [-20]
    assert balance(c) == 40
    summary = selectors.points_summary(customer=c, now=datetime(2027, 4, 5, tzinfo=UTC))
    assert (summary["balance"], summary["expiring_soon"]) == (40, 40)
    # C lapses
    assert services.points_expire(now=datetime(2027, 5, 1, tzinfo=UTC)) == 1
    assert [e.amount for e in entries(c, kind="expire")] == [-20, -40]
    assert balance(c) == 0
    assert entries(c)[-1].balance_after == 0
    assert services.ledger_reconcile() == []


def test_expiry_job_only_touches_customers_with_lapsed_points():
    a, b = CustomerFactory(timezone="UTC"), CustomerFactory(timezone="UTC")
    earn(a, 10, "x", at=datetime(2026, 1, 5, tzinfo=UTC))
    earn(b, 10, "x", at=datetime(2026, 6, 5, tzinfo=UTC))
    assert services.points_expire(now=datetime(2027, 2, 1, tzinfo=UTC)) == 1
    assert (balance(a), balance(b)) == (0, 10)


def test_lapsed_points_cannot_be_spent_before_the_job_runs():
    c = CustomerFactory(timezone="UTC")
    earn(c, 100, "old", at=datetime(2026, 1, 10, tzinfo=UTC))  # lapses 2027-02-01
    earn(c, 20, "new", at=datetime(2026, 6, 1, tzinfo=UTC))  # lapses 2027-07-01
    after = datetime(2027, 2, 5, tzinfo=UTC)
    assert balance(c) == 120  # the job has not run yet
    with pytest.raises(Conflict) as exc:
        spend(c, 50, "s1", at=after)
    assert exc.value.code == "insufficient_points" and exc.value.details["balance"] == 20
    assert len(entries(c)) == 2 and balance(c) == 120  # nothing written, not even the expiry
    spend(c, 20, "s2", at=after)
    assert [(e.kind, e.amount, e.balance_after) for e in entries(c)][2:] == [("expire", -100, 20), ("spend", -20, 0)]
    assert services.points_expire(now=after) == 0
    assert services.ledger_reconcile() == []


def test_no_expiry_when_the_policy_says_never():
    IncentivePolicy.objects.filter(pk=1).update(expiry_months=0)
    c = CustomerFactory()
    assert earn(c, 10, "k").entry.expires_at is None
    assert services.points_expire(now=datetime(2040, 1, 1, tzinfo=UTC)) == 0


def test_customers_with_points_expiring():
    soon, later, spent = (CustomerFactory(timezone="UTC") for _ in range(3))
    earn(soon, 100, "k", at=datetime(2026, 1, 10, tzinfo=UTC))  # lapses 2027-02-01
    earn(later, 70, "k", at=datetime(2026, 2, 10, tzinfo=UTC))  # lapses 2027-03-01
    earn(spent, 50, "k", at=datetime(2026, 1, 10, tzinfo=UTC))  # lapses 2027-02-01 ...
    spend(spent, 50, "s", at=datetime(2026, 1, 11, tzinfo=UTC))  # ... but is all spent
    earn(later, 5, "k2", at=datetime(2026, 1, 12, tzinfo=UTC))  # lapses 2027-02-01 too
    spend(soon, 30, "s", at=datetime(2026, 3, 1, tzinfo=UTC))
    now = datetime(2027, 1, 15, tzinfo=UTC)
    assert list(selectors.customers_with_points_expiring(now=now)) == [
        {"customer_id": soon.pk, "expiring": 70},
        {"customer_id": later.pk, "expiring": 5},
    ]
    assert list(selectors.customers_with_points_expiring(now=now, within_days=60)) == [
        {"customer_id": soon.pk, "expiring": 70},
        {"customer_id": later.pk, "expiring": 75},
    ]
    # already lapsed points are not "expiring soon"
    assert list(selectors.customers_with_points_expiring(now=datetime(2027, 2, 2, tzinfo=UTC))) == [
        {"customer_id": later.pk, "expiring": 70},
    ]


# --- purchase points and refunds --------------------------------------------------------


def _upsert_order(customer, status, amount="99.90", external_id="o-1"):
    payload = {
        "items": [
            {
                "external_id": external_id,
                "customer": customer.external_id,
                "amount": amount,
                "status": status,
                "occurred_at": "2026-03-01T10:00:00+08:00",
            }
        ]
    }
    result = orders_upsert_batch(batch=validate_batch(payload, OrderRow))
    assert not result.errors
    from users.models import Order

    return Order.objects.get(external_id=external_id)


def test_purchase_points_on_paid_order_and_reversed_on_refund():
    c = CustomerFactory()
    order = _upsert_order(c, "paid")
    assert services.order_rules_apply(order_ids=[order.pk], now=T0) == 1
    assert services.order_rules_apply(order_ids=[order.pk], now=T0) == 0  # retry: nothing twice
    earned = entries(c)
    assert [(e.kind, e.amount, e.growth, e.source_ref) for e in earned] == [("earn", 99, 99, "order:o-1")]
    assert PointsAccount.objects.get(customer=c).growth_value == 99

    _upsert_order(c, "refunded")
    assert services.order_rules_apply(order_ids=[order.pk], now=T0 + timedelta(days=1)) == 1
    assert services.order_rules_apply(order_ids=[order.pk], now=T0 + timedelta(days=1)) == 0
    rev = entries(c)[-1]
    assert (rev.kind, rev.amount, rev.growth, rev.reverses_id, rev.balance_after) == (
        "reverse",
        -99,
        -99,
        earned[0].pk,
        0,
    )
    account = PointsAccount.objects.get(customer=c)
    assert (account.balance, account.growth_value) == (0, 0)
    assert services.ledger_reconcile() == []


def test_an_order_paid_again_after_a_refund_earns_again_once():
    c = CustomerFactory()
    order = _upsert_order(c, "paid", amount="50.00")
    services.order_rules_apply(order_ids=[order.pk], now=T0)
    _upsert_order(c, "refunded", amount="50.00")
    services.order_rules_apply(order_ids=[order.pk], now=T0)
    _upsert_order(c, "paid", amount="50.00")
    assert services.order_rules_apply(order_ids=[order.pk], now=T0) == 1
    assert services.order_rules_apply(order_ids=[order.pk], now=T0) == 0  # a retry pays nothing twice
    assert balance(c) == 50
    _upsert_order(c, "cancelled", amount="50.00")
    assert services.order_rules_apply(order_ids=[order.pk], now=T0) == 1
    _upsert_order(c, "paid", amount="50.00")
    assert services.order_rules_apply(order_ids=[order.pk], now=T0) == 1
    assert [(e.kind, e.amount, e.balance_after) for e in entries(c)] == [
        ("earn", 50, 50),
        ("reverse", -50, 0),
        ("earn", 50, 50),
        ("reverse", -50, 0),
        ("earn", 50, 50),
    ]
    assert PointsAccount.objects.get(customer=c).growth_value == 50
    assert services.ledger_reconcile() == []


def test_an_order_paid_again_after_a_clamped_refund_earns_back_only_what_was_taken():
    c = CustomerFactory()
    order = _upsert_order(c, "paid", amount="100.00")
    services.order_rules_apply(order_ids=[order.pk], now=T0)
    spend(c, 70, "s")  # 70 of the order's 100 points are spent
    _upsert_order(c, "refunded", amount="100.00")
    services.order_rules_apply(order_ids=[order.pk], now=T0)  # takes back the 30 left
    _upsert_order(c, "paid", amount="100.00")
    assert services.order_rules_apply(order_ids=[order.pk], now=T0) == 1
    assert services.order_rules_apply(order_ids=[order.pk], now=T0) == 0
    assert [(e.kind, e.amount, e.balance_after) for e in entries(c)] == [
        ("earn", 100, 100),
        ("spend", -70, 30),
        ("reverse", -30, 0),
        ("earn", 30, 30),
    ]
    assert services.ledger_reconcile() == []


def test_refund_reversal_is_clamped_when_points_were_already_spent():
    c = CustomerFactory()
    order = _upsert_order(c, "paid", amount="100.00")
    services.order_rules_apply(order_ids=[order.pk], now=T0)
    spend(c, 60, "s")
    _upsert_order(c, "refunded", amount="100.00")
    services.order_rules_apply(order_ids=[order.pk], now=T0)
    rev = entries(c)[-1]
    assert (rev.kind, rev.amount, rev.balance_after) == ("reverse", -40, 0)
    assert balance(c) == 0
    assert services.ledger_reconcile() == []


def test_refund_of_an_order_that_never_paid_points_writes_nothing():
    c = CustomerFactory()
    order = _upsert_order(c, "cancelled")
    assert services.order_rules_apply(order_ids=[order.pk], now=T0) == 0
    assert not PointsEntry.objects.exists()


# --- earning rules ---------------------------------------------------------------------


def _events(c, type_, times):
    return [EventFactory(customer=c, type=type_, occurred_at=t).pk for t in times]


def test_daily_cap_content_rule_pays_at_most_the_cap_a_day():
    rule = EarningRule.objects.get(code="content-accepted")
    assert (rule.points, rule.daily_cap) == (20, 100)
    c = CustomerFactory(timezone="UTC")
    day1 = [datetime(2026, 3, 1, 9, i, tzinfo=UTC) for i in range(6)]
    ids = _events(c, "content_accepted", day1)
    assert services.event_rules_apply(event_ids=ids, now=T0) == 5
    assert services.event_rules_apply(event_ids=ids, now=T0) == 0
    assert balance(c) == 100
    # one more the same day, processed in a later batch: still capped
    more = _events(c, "content_accepted", [datetime(2026, 3, 1, 20, tzinfo=UTC)])
    assert services.event_rules_apply(event_ids=more, now=T0) == 0
    # the next day pays again
    nxt = _events(c, "content_accepted", [datetime(2026, 3, 2, 9, tzinfo=UTC)])
    assert services.event_rules_apply(event_ids=nxt, now=T0) == 1
    assert balance(c) == 120
    assert {e.earned_on for e in entries(c)} == {date(2026, 3, 1), date(2026, 3, 2)}


def test_daily_cap_clamps_the_last_payment():
    rule = EarningRule.objects.get(code="content-accepted")
    rule.daily_cap = 50
    rule.save()
    c = CustomerFactory(timezone="UTC")
    ids = _events(c, "content_accepted", [datetime(2026, 3, 1, 9, i, tzinfo=UTC) for i in range(4)])
    services.event_rules_apply(event_ids=ids, now=T0)
    assert [e.amount for e in entries(c)] == [20, 20, 10]


def test_inactive_rules_and_rules_outside_their_period_pay_nothing():
    rule = EarningRule.objects.get(code="content-accepted")
    c = CustomerFactory(timezone="UTC")
    at = datetime(2026, 3, 1, 9, tzinfo=UTC)
    ids = _events(c, "content_accepted", [at])
    rule.is_active = False
    rule.save()
    assert services.event_rules_apply(event_ids=ids, now=at) == 0
    rule.is_active = True
    rule.active_from = at + timedelta(seconds=1)
    rule.save()
    assert services.event_rules_apply(event_ids=ids, now=at + timedelta(days=1)) == 0
    rule.active_from, rule.active_until = at - timedelta(days=10), at
    rule.save()
    assert services.event_rules_apply(event_ids=ids, now=at - timedelta(days=1)) == 0
    assert not PointsEntry.objects.exists()
    rule.active_until = at + timedelta(seconds=1)
    rule.save()
    assert services.event_rules_apply(event_ids=ids, now=at) == 1


def test_rule_period_is_judged_at_the_time_of_the_fact_not_of_processing():
    """A check-in just before a rule's period ends pays even when the worker gets to it
    later; a backfilled event from before the period pays nothing."""
    rule = EarningRule.objects.get(code="content-accepted")
    rule.active_from = datetime(2026, 3, 1, tzinfo=UTC)
    rule.active_until = datetime(2026, 3, 31, tzinfo=UTC)
    rule.save()
    c = CustomerFactory(timezone="UTC")
    inside = _events(c, "content_accepted", [datetime(2026, 3, 30, 23, 59, tzinfo=UTC)])
    before = _events(c, "content_accepted", [datetime(2026, 2, 28, 23, 0, tzinfo=UTC)])
    after = _events(c, "content_accepted", [datetime(2026, 3, 31, 0, 1, tzinfo=UTC)])
    processed = datetime(2026, 3, 31, 0, 5, tzinfo=UTC)
    assert services.event_rules_apply(event_ids=inside + before + after, now=processed) == 1
    assert [e.source_ref for e in entries(c)] == [f"event:{inside[0]}"]
    # the same holds for purchase rules, judged at the order's time
    EarningRule.objects.filter(code="purchase").update(active_until=datetime(2026, 3, 1, 3, tzinfo=UTC))
    order = _upsert_order(c, "paid", amount="10.00")  # occurred 2026-03-01 02:00 UTC
    assert services.order_rules_apply(order_ids=[order.pk], now=processed) == 1


def test_inactive_purchase_rule_pays_nothing():
    EarningRule.objects.filter(code="purchase").update(is_active=False)
    c = CustomerFactory()
    order = _upsert_order(c, "paid")
    assert services.order_rules_apply(order_ids=[order.pk], now=T0) == 0
    assert not PointsEntry.objects.exists()


def test_checkin_pays_once_per_local_day_in_the_customers_timezone():
    c = CustomerFactory(timezone="Asia/Shanghai")
    ids = _events(
        c,
        "checkin",
        [
            datetime(2026, 3, 1, 15, 0, tzinfo=UTC),  # 2026-03-01 23:00 in Shanghai
            datetime(2026, 3, 1, 16, 30, tzinfo=UTC),  # 2026-03-02 00:30 — same UTC day, another local day
            datetime(2026, 3, 2, 15, 0, tzinfo=UTC),  # 2026-03-02 23:00 — another UTC day, same local day
        ],
    )
    assert services.event_rules_apply(event_ids=ids, now=T0) == 2
    assert sorted((e.earned_on, e.amount) for e in entries(c)) == [(date(2026, 3, 1), 10), (date(2026, 3, 2), 10)]


def test_streak_bonus_pays_on_day_7_and_14():
    c = CustomerFactory(timezone="UTC")
    start = datetime(2026, 3, 1, 8, tzinfo=UTC)
    for day in range(14):  # one batch a day, as the backend sends them
        ids = _events(c, "checkin", [start + timedelta(days=day)])
        services.event_rules_apply(event_ids=ids, now=start + timedelta(days=day, hours=1))
    bonuses = entries(c, rule__code="checkin-streak-7")
    assert [(e.earned_on, e.amount) for e in bonuses] == [(date(2026, 3, 7), 50), (date(2026, 3, 14), 50)]
    assert balance(c) == 14 * 10 + 2 * 50


def test_streak_bonus_in_one_batch_and_a_gap_resets_the_streak():
    c = CustomerFactory(timezone="UTC")
    start = datetime(2026, 3, 1, 8, tzinfo=UTC)
    days = [d for d in range(14) if d != 6]  # misses day 7: days 8..14 are a new 7-day streak
    ids = _events(c, "checkin", [start + timedelta(days=d) for d in days])
    services.event_rules_apply(event_ids=ids, now=start + timedelta(days=15))
    assert [e.earned_on for e in entries(c, rule__code="checkin-streak-7")] == [date(2026, 3, 14)]
    assert balance(c) == 13 * 10 + 50


def test_streak_bonus_pays_when_a_missing_checkin_arrives_late():
    c = CustomerFactory(timezone="UTC")
    start = datetime(2026, 3, 1, 8, tzinfo=UTC)
    first = _events(c, "checkin", [start + timedelta(days=d) for d in range(10) if d != 3])
    services.event_rules_apply(event_ids=first, now=start + timedelta(days=11))
    assert not entries(c, rule__code="checkin-streak-7")
    late = _events(c, "checkin", [start + timedelta(days=3)])  # day 4 arrives after days 5..10
    services.event_rules_apply(event_ids=late, now=start + timedelta(days=12))
    assert [(e.earned_on, e.amount) for e in entries(c, rule__code="checkin-streak-7")] == [(date(2026, 3, 7), 50)]
    services.event_rules_apply(event_ids=late + first, now=start + timedelta(days=12))  # a retry pays nothing more
    assert len(entries(c, rule__code="checkin-streak-7")) == 1


def test_invite_pays_invitee_and_inviter_once():
    inviter = CustomerFactory()
    invitee = CustomerFactory(referred_by=inviter)
    loner = CustomerFactory()
    ids = _events(invitee, "invite_accepted", [datetime(2026, 3, 1, 9, tzinfo=UTC)])
    ids += _events(loner, "invite_accepted", [datetime(2026, 3, 1, 9, tzinfo=UTC)])
    assert services.event_rules_apply(event_ids=ids, now=T0) == 3
    # a retry and a second invite_accepted for the same invitee pay nothing more
    again = _events(invitee, "invite_accepted", [datetime(2026, 3, 2, 9, tzinfo=UTC)])
    assert services.event_rules_apply(event_ids=ids + again, now=T0) == 0
    assert (balance(inviter), balance(invitee), balance(loner)) == (100, 100, 100)
    assert len(entries(inviter)) == 1


# --- badges and levels -------------------------------------------------------------------


def test_checkin_streak_badge_is_awarded_once():
    c = CustomerFactory(timezone="UTC")
    start = datetime(2026, 3, 1, 8, tzinfo=UTC)
    ids = _events(c, "checkin", [start + timedelta(days=d) for d in range(29)])
    services.event_rules_apply(event_ids=ids, now=T0)
    assert not CustomerBadge.objects.filter(customer=c).exists()  # 29 days is not 30
    day30 = _events(c, "checkin", [start + timedelta(days=29)])
    services.event_rules_apply(event_ids=day30, now=T0)
    day31 = _events(c, "checkin", [start + timedelta(days=30)])
    services.event_rules_apply(event_ids=day31, now=T0)
    services.event_rules_apply(event_ids=ids + day30 + day31, now=T0)
    assert list(CustomerBadge.objects.filter(customer=c).values_list("badge__code", flat=True)) == ["checkin-king-30"]
    assert [b["code"] for b in selectors.customer_badges(customer=c)] == ["checkin-king-30"]


def test_content_master_badge_after_ten_accepted_posts_once():
    c = CustomerFactory(timezone="UTC")
    ids = _events(c, "content_accepted", [datetime(2026, 3, 1 + d, 9, tzinfo=UTC) for d in range(9)])
    services.event_rules_apply(event_ids=ids, now=T0)
    assert not CustomerBadge.objects.filter(customer=c).exists()
    tenth = _events(c, "content_accepted", [datetime(2026, 3, 20, 9, tzinfo=UTC)])
    services.event_rules_apply(event_ids=tenth, now=T0)
    eleventh = _events(c, "content_accepted", [datetime(2026, 3, 21, 9, tzinfo=UTC)])
    services.event_rules_apply(event_ids=eleventh, now=T0)
    assert list(CustomerBadge.objects.filter(customer=c).values_list("badge__code", flat=True)) == ["content-master-10"]


def test_badges_do_not_depend_on_the_earning_rule_being_on():
    EarningRule.objects.filter(kind__in=["content", "checkin", "streak", "invite"]).update(is_active=False)
    c = CustomerFactory(timezone="UTC")
    ids = _events(c, "content_accepted", [datetime(2026, 3, 1 + d, 9, tzinfo=UTC) for d in range(10)])
    assert services.event_rules_apply(event_ids=ids, now=T0) == 0
    assert list(CustomerBadge.objects.filter(customer=c).values_list("badge__code", flat=True)) == ["content-master-10"]


def test_invite_star_badge_goes_to_the_inviter():
    inviter = CustomerFactory()
    ids = []
    for _ in range(10):
        invitee = CustomerFactory(referred_by=inviter)
        ids += _events(invitee, "invite_accepted", [datetime(2026, 3, 1, 9, tzinfo=UTC)])
    services.event_rules_apply(event_ids=ids, now=T0)
    assert list(CustomerBadge.objects.values_list("customer_id", "badge__code")) == [(inviter.pk, "invite-star-10")]
    assert balance(inviter) == 500  # 10 × 100 under the invite rule's daily cap of 500


def test_levels_move_up_with_growth_value():
    c = CustomerFactory()
    o1 = _upsert_order(c, "paid", amount="999.99", external_id="o-1")
    services.order_rules_apply(order_ids=[o1.pk], now=T0)
    assert selectors.customer_level(customer=c)["name"].startswith("普通会员")
    o2 = _upsert_order(c, "paid", amount="1.00", external_id="o-2")
    services.order_rules_apply(order_ids=[o2.pk], now=T0)
    level = selectors.customer_level(customer=c)
    assert (level["threshold"], level["growth_value"], level["next"]["threshold"]) == (1000, 1000, 5000)
    o3 = _upsert_order(c, "paid", amount="4000.00", external_id="o-3")
    services.order_rules_apply(order_ids=[o3.pk], now=T0)
    assert selectors.customer_level(customer=c)["threshold"] == 5000


def test_level_drops_only_after_the_grace_period_when_growth_leaves_the_window():
    IncentivePolicy.objects.filter(pk=1).update(growth_window_days=365, level_grace_days=30)
    c = CustomerFactory()
    order = _upsert_order(c, "paid", amount="1500.00")
    services.order_rules_apply(order_ids=[order.pk], now=T0)
    silver = Level.objects.get(threshold=1000)
    assert PointsAccount.objects.get(customer=c).level == silver
    a_year_later = T0 + timedelta(days=400)
    services.levels_update(recompute_growth=True, now=a_year_later)
    account = PointsAccount.objects.get(customer=c)
    assert (account.growth_value, account.level, account.level_below_since) == (0, silver, a_year_later)
    services.levels_update(recompute_growth=True, now=a_year_later + timedelta(days=29))
    assert PointsAccount.objects.get(customer=c).level == silver
    services.levels_update(recompute_growth=True, now=a_year_later + timedelta(days=30))
    account = PointsAccount.objects.get(customer=c)
    assert (account.level.threshold, account.level_below_since) == (0, None)


def test_growth_recompute_pages_through_the_accounts_in_chunks(monkeypatch):
    from incentives.services import levels

    monkeypatch.setattr(levels, "GROWTH_RECOMPUTE_CHUNK", 2)
    customers = [CustomerFactory() for _ in range(5)]
    for i, c in enumerate(customers):
        services.order_rules_apply(
            order_ids=[_upsert_order(c, "paid", amount=f"{10 * (i + 1)}.00", external_id=f"o-{i}").pk], now=T0
        )
    PointsAccount.objects.update(growth_value=7)  # wrong everywhere: every chunk must set it back
    services.levels_update(recompute_growth=True, now=T0 + timedelta(days=1))
    assert sorted(PointsAccount.objects.values_list("growth_value", flat=True)) == [10, 20, 30, 40, 50]


def test_levels_update_in_sql_decides_like_rules_next_level():
    """The set-based UPDATE against the pure rule, over every case: no level yet,
    upgrades, wobbles within the margin, grace starting, running and over, several
    levels down, a level above every threshold."""
    import random

    from incentives import rules

    IncentivePolicy.objects.filter(pk=1).update(level_grace_days=30, level_downgrade_margin_pct=10)
    Level.objects.all().delete()
    levels = [Level.objects.create(name=f"L{t}", threshold=t) for t in (100, 1000, 5000)]
    steps = [rules.LevelStep(lv.pk, lv.threshold) for lv in levels]
    rng = random.Random(11)
    now = T0
    cases, moved = [], 0
    for _ in range(300):
        c = CustomerFactory()
        current = rng.choice([None, *levels])
        growth = rng.choice(
            [0, 50, 99, 100, 899, 900, 950, 999, 1000, 4499, 4500, 4999, 5000, 9000, rng.randrange(0, 6000)]
        )
        below = rng.choice([None, now, now - timedelta(days=29), now - timedelta(days=30), now - timedelta(days=90)])
        PointsAccount.objects.create(customer=c, growth_value=growth, level=current, level_below_since=below)
        step = rules.LevelStep(current.pk, current.threshold) if current else None
        expected, expected_below = rules.next_level(
            current=step, growth=growth, below_since=below, now=now, levels=steps, grace_days=30, margin_pct=10
        )
        cases.append((c.pk, expected.id if expected else None, expected_below))
        moved += (expected.id if expected else None, expected_below) != (current.pk if current else None, below)
    changed = services.levels_update(now=now)
    got = {a.customer_id: (a.level_id, a.level_below_since) for a in PointsAccount.objects.all()}
    assert [(pk, *got[pk]) for pk, _, _ in cases] == cases
    assert changed == moved > 50
    assert services.levels_update(now=now) == 0  # settled: a second pass changes nothing


# --- leaderboards ------------------------------------------------------------------------

START, END = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)


def test_invite_leaderboard_orders_by_accepted_invites_within_the_period():
    top, second, third = (
        CustomerFactory(nickname="top"),
        CustomerFactory(nickname="second"),
        CustomerFactory(nickname="third"),
    )
    for referrer, times in [
        (top, [START, START + timedelta(days=5), END - timedelta(seconds=1)]),
        (second, [START + timedelta(days=1), START - timedelta(seconds=1), END]),  # two outside the period
        (third, [START + timedelta(days=2)]),
    ]:
        for at in times:
            invitee = CustomerFactory(referred_by=referrer)
            EventFactory(customer=invitee, type="invite_accepted", occurred_at=at)
    board = selectors.leaderboard(kind="invites", start=START, end=END)
    assert [(r["rank"], r["nickname"], r["score"]) for r in board] == [(1, "top", 3), (2, "second", 1), (3, "third", 1)]
    assert board[0]["customer"] == top.external_id
    assert len(selectors.leaderboard(kind="invites", start=START, end=END, limit=1)) == 1


def test_checkin_leaderboard_counts_checkin_days_within_the_period():
    a, b = CustomerFactory(nickname="a", timezone="UTC"), CustomerFactory(nickname="b", timezone="UTC")
    for d in range(4):
        EventFactory(customer=a, type="checkin", occurred_at=START + timedelta(days=d, hours=8))
    EventFactory(customer=a, type="checkin", occurred_at=END + timedelta(hours=1))  # after the period
    for d in range(2):
        EventFactory(customer=b, type="checkin", occurred_at=START + timedelta(days=d, hours=8))
    EventFactory(customer=b, type="login", occurred_at=START + timedelta(hours=9))
    dup = CustomerFactory(nickname="dup", timezone="UTC")  # three check-in events on one day are one day
    for minute in range(3):
        EventFactory(customer=dup, type="checkin", occurred_at=START + timedelta(days=3, hours=2, minutes=minute))
    board = selectors.leaderboard(kind="checkins", start=START, end=END)
    assert [(r["customer"], r["score"]) for r in board] == [
        (a.external_id, 4),
        (b.external_id, 2),
        (dup.external_id, 1),
    ]
    with pytest.raises(ValueError):
        selectors.leaderboard(kind="purchases", start=START, end=END)


def test_checkin_leaderboard_counts_days_in_each_customers_timezone():
    # 03:00 and 20:00 UTC on March 2nd: one day in UTC; two in Shanghai (11:00 on the 2nd,
    # 04:00 on the 3rd) and two in New York (22:00 on the 1st, 15:00 on the 2nd).
    ny, sh, utc = (CustomerFactory(nickname=tz, timezone=tz) for tz in ("America/New_York", "Asia/Shanghai", "UTC"))
    for c in (ny, sh, utc):
        for hour in (3, 20):
            EventFactory(customer=c, type="checkin", occurred_at=START + timedelta(days=1, hours=hour))
    board = selectors.leaderboard(kind="checkins", start=START, end=END)
    assert {r["customer"]: r["score"] for r in board} == {ny.external_id: 2, sh.external_id: 2, utc.external_id: 1}
    assert [r["customer"] for r in board][-1] == utc.external_id
    assert len(selectors.leaderboard(kind="checkins", start=START, end=END, limit=2)) == 2


# --- points mall -------------------------------------------------------------------------


def test_reward_redeem_spends_points_and_takes_stock():
    c = CustomerFactory()
    earn(c, 500, "k")
    reward = RewardFactory(points_price=200, stock=3)
    redemption, replayed = services.reward_redeem(customer=c, reward_id=reward.pk, idempotency_key="r1", now=T0)
    assert replayed is False
    assert (redemption.points, redemption.status, redemption.spend_entry.amount) == (200, "completed", -200)
    reward.refresh_from_db()
    assert (reward.stock, balance(c)) == (2, 300)
    again, replayed = services.reward_redeem(customer=c, reward_id=reward.pk, idempotency_key="r1", now=T0)
    assert (again.pk, replayed) == (redemption.pk, True)
    reward.refresh_from_db()
    assert (reward.stock, balance(c), Redemption.objects.count()) == (2, 300, 1)
    other = RewardFactory()
    with pytest.raises(Conflict) as exc:
        services.reward_redeem(customer=c, reward_id=other.pk, idempotency_key="r1", now=T0)
    assert exc.value.code == "idempotency_key_reused"


def test_unlimited_stock_is_never_out_of_stock():
    c = CustomerFactory()
    earn(c, 500, "k")
    reward = RewardFactory(points_price=100, stock=None)
    for i in range(3):
        services.reward_redeem(customer=c, reward_id=reward.pk, idempotency_key=f"r{i}", now=T0)
    reward.refresh_from_db()
    assert (reward.stock, balance(c)) == (None, 200)


def _assert_redeem_fails(c, reward_id, code, status=409):
    before = (PointsEntry.objects.count(), Redemption.objects.count(), balance(c))
    stock_before = Reward.objects.filter(pk=reward_id).values_list("stock", flat=True).first()
    with pytest.raises(ApplicationError) as exc:
        services.reward_redeem(customer=c, reward_id=reward_id, idempotency_key="try", now=T0)
    assert (exc.value.code, exc.value.status_code) == (code, status)
    assert (PointsEntry.objects.count(), Redemption.objects.count(), balance(c)) == before
    assert Reward.objects.filter(pk=reward_id).values_list("stock", flat=True).first() == stock_before


def test_reward_redeem_refusals_write_nothing():
    c = CustomerFactory()
    earn(c, 150, "k")
    _assert_redeem_fails(c, RewardFactory(stock=0).pk, "out_of_stock")
    _assert_redeem_fails(c, RewardFactory(valid_until=T0 - timedelta(seconds=1)).pk, "reward_unavailable")
    _assert_redeem_fails(c, RewardFactory(valid_until=T0).pk, "reward_unavailable")
    _assert_redeem_fails(c, RewardFactory(valid_from=T0 + timedelta(days=1)).pk, "reward_unavailable")
    _assert_redeem_fails(c, RewardFactory(is_active=False).pk, "reward_unavailable")
    _assert_redeem_fails(c, 999_999, "not_found", status=404)
    # insufficient points: the stock taken by the conditional UPDATE is rolled back
    _assert_redeem_fails(c, RewardFactory(points_price=151, stock=1).pk, "insufficient_points")


def test_redemption_cancel_gives_points_back_restocks_and_is_idempotent():
    c = CustomerFactory(timezone="UTC")
    earn(c, 300, "k")
    reward = RewardFactory(points_price=200, stock=1)
    redemption, _ = services.reward_redeem(customer=c, reward_id=reward.pk, idempotency_key="r1", now=T0)
    reward.refresh_from_db()
    assert (reward.stock, balance(c)) == (0, 100)
    later = T0 + timedelta(days=2)
    cancelled = services.redemption_cancel(redemption=redemption, now=later)
    assert (cancelled.status, cancelled.cancelled_at) == ("cancelled", later)
    reward.refresh_from_db()
    assert (reward.stock, balance(c)) == (1, 300)
    back = entries(c)[-1]
    assert (back.kind, back.amount, back.reverses_id) == ("reverse", 200, redemption.spend_entry_id)
    assert back.expires_at == datetime(2027, 2, 1, tzinfo=UTC)  # a fresh lot from the cancellation
    services.redemption_cancel(redemption=redemption, now=later)
    reward.refresh_from_db()
    assert (reward.stock, balance(c), len(entries(c))) == (1, 300, 3)
    assert services.ledger_reconcile() == []


# --- reconcile -------------------------------------------------------------------------


def test_ledger_reconcile_is_clean_and_reports_drift():
    a, b = CustomerFactory(), CustomerFactory()
    earn(a, 100, "k")
    earn(b, 40, "k")
    spend(b, 15, "s")
    assert services.ledger_reconcile() == []
    PointsAccount.objects.filter(customer=b).update(balance=999)
    assert services.ledger_reconcile() == [{"customer_id": b.pk, "balance": 999, "ledger": 25, "last_after": 25}]


def test_ledger_reconcile_reports_an_account_without_entries_and_entries_without_account():
    a = CustomerFactory()
    PointsAccount.objects.create(customer=a, balance=5)
    drift = services.ledger_reconcile()
    assert drift == [{"customer_id": a.pk, "balance": 5, "ledger": 0, "last_after": 0}]


def test_summary_balance_leaves_out_lapsed_points_before_the_job_runs():
    c = CustomerFactory(timezone="UTC")
    earn(c, 100, "old", at=datetime(2026, 1, 10, tzinfo=UTC))  # lapses 2027-02-01
    earn(c, 20, "new", at=datetime(2026, 2, 10, tzinfo=UTC))  # lapses 2027-03-01
    summary = selectors.points_summary(customer=c, now=datetime(2027, 2, 5, tzinfo=UTC))
    # what the customer can spend right now: a spend of 21 would be refused
    assert (summary["balance"], summary["expiring_soon"]) == (20, 20)
    with pytest.raises(Conflict):
        spend(c, 21, "s", at=datetime(2027, 2, 5, tzinfo=UTC))

"""Incremental recompute: folding changed customers into the published run gives what a
full recompute as of the same instant gives."""

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest

from segments import rules, selectors, services
from segments.models import CustomerScore, SegmentMembership, SegmentMembershipChange, SegmentRun, StageChange
from segments.services import segment_save
from users.models import Order

from .factories import AS_OF, CustomerFactory, OrderFactory, generate_history
from .test_engine import assert_matches_reference

COMPARED = (
    "recency_days",
    "frequency",
    "monetary",
    "orders_total",
    "r_score",
    "f_score",
    "m_score",
    "tier",
    "rfm_group",
    "rfm_segment",
)


def snapshot(run) -> dict[int, dict]:
    fields = (*COMPARED, "stage", "operating_class")
    return {s.customer_id: {f: getattr(s, f) for f in fields} for s in CustomerScore.objects.filter(run=run)}


@pytest.fixture
def published(db):
    people = generate_history()
    segment_save(name="Frequent", definition={"field": "frequency", "op": "gte", "value": 4})
    run = services.recompute_sync(as_of=AS_OF)
    return people, run


def change_some_orders(people, *, seed=11):
    """New orders for ~5% of customers (dated up to AS_OF), one refund, one newcomer."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(people), size=len(people) // 20, replace=False)
    for i, index in enumerate(chosen):
        for k in range(1 + i % 4):
            OrderFactory(
                customer=people[int(index)],
                amount=Decimal(["99.00", "1288.00", "12000.00"][k % 3]),
                occurred_at=AS_OF - timedelta(days=int(rng.integers(0, 40)), hours=k),
            )
    refunded = (
        Order.objects.filter(status="paid", occurred_at__gt=AS_OF - timedelta(days=200))
        .order_by("-amount", "id")
        .first()
    )
    refunded.status = "refunded"
    refunded.save()
    newcomer = CustomerFactory(signup_at=AS_OF - timedelta(days=5))
    OrderFactory(customer=newcomer, amount=Decimal("49.00"), occurred_at=AS_OF - timedelta(days=1))
    return {int(people[int(i)].pk) for i in chosen} | {refunded.customer_id, newcomer.pk}


def test_incremental_equals_a_full_recompute_as_of_the_same_instant(published):
    people, run = published
    before = snapshot(run)
    segment_before = set(
        SegmentMembership.objects.filter(segment__slug="frequent").values_list("customer_id", flat=True)
    )
    dirty = change_some_orders(people)

    changed = services.recompute_incremental(now=AS_OF)
    assert changed == len(dirty)
    inc = SegmentRun.objects.filter(kind=SegmentRun.Kind.INCREMENTAL).get()
    assert inc.status == SegmentRun.Status.APPLIED and inc.counts["dirty"] == len(dirty)
    assert selectors.run_published() == run  # patched in place, still the same run
    patched = snapshot(run)
    assert {c for c in patched if patched[c] != before.get(c)} >= dirty - {c for c in dirty if c not in patched}

    # Against the independent computation, labels included (p_alive of the published model).
    assert_matches_reference(run, as_of=AS_OF, t=rules.Thresholds.of(run.rule_set))

    # Stage changes: exactly the customers whose stage moved, recorded against the incremental run.
    moved = {c for c in patched if patched[c]["stage"] != (before[c]["stage"] if c in before else "")}
    changes = StageChange.objects.filter(run=inc)
    assert {c.customer_id for c in changes} == moved and moved
    for c in changes:
        assert c.from_stage == (before[c.customer_id]["stage"] if c.customer_id in before else "")
        assert c.to_stage == patched[c.customer_id]["stage"]

    # Custom segment membership follows, with enter/leave changes.
    expected = {c for c, row in patched.items() if row["frequency"] >= 4}
    segment_after = set(
        SegmentMembership.objects.filter(segment__slug="frequent").values_list("customer_id", flat=True)
    )
    assert segment_after == expected and segment_after != segment_before
    since_inc = SegmentMembershipChange.objects.filter(segment__slug="frequent", at__gte=inc.started_at)
    assert {c.customer_id for c in since_inc if c.change == "enter"} == segment_after - segment_before
    assert {c.customer_id for c in since_inc if c.change == "leave"} == segment_before - segment_after

    # A fresh full recompute as of the same instant agrees on every field that must agree.
    full = services.recompute_sync(as_of=AS_OF)
    fresh = snapshot(full)
    assert set(fresh) == set(patched)
    diffs = [(c, f) for c in fresh for f in COMPARED if fresh[c][f] != patched[c][f]]
    assert not diffs, diffs[:10]


def test_incremental_later_shifts_only_the_changed_customers(published):
    """Documented: recency of untouched customers stays relative to the published as-of."""
    people, run = published
    before = snapshot(run)
    later = AS_OF + timedelta(days=10)
    customer = people[1]
    OrderFactory(customer=customer, amount=Decimal("99.00"), occurred_at=later - timedelta(days=2))
    assert services.recompute_incremental(now=later) == 1
    after = snapshot(run)
    assert after[customer.pk]["recency_days"] == 2
    assert (
        after[customer.pk]["frequency"] == before[customer.pk]["frequency"] + 1 or before[customer.pk]["frequency"] == 0
    )
    untouched = [c for c in before if c != customer.pk]
    assert all(after[c]["recency_days"] == before[c]["recency_days"] for c in untouched)
    assert all(after[c]["frequency"] == before[c]["frequency"] for c in untouched)


def test_incremental_with_nothing_to_do(db):
    assert services.recompute_incremental() == 0  # nothing published yet
    assert not SegmentRun.objects.exists()
    OrderFactory(occurred_at=AS_OF - timedelta(days=3))
    run = services.recompute_sync(as_of=AS_OF)
    before = snapshot(run)
    assert services.recompute_incremental(now=AS_OF) == 0
    assert snapshot(run) == before
    assert SegmentRun.objects.get(kind=SegmentRun.Kind.INCREMENTAL).status == SegmentRun.Status.APPLIED


def test_incremental_yields_to_a_running_full_recompute(db):
    OrderFactory(occurred_at=AS_OF - timedelta(days=3))
    run = services.recompute_sync(as_of=AS_OF)
    before = snapshot(run)
    running, _ranges = services.recompute_start(as_of=AS_OF)
    OrderFactory(occurred_at=AS_OF - timedelta(days=1))
    assert services.recompute_incremental(now=AS_OF) == 0
    assert snapshot(run) == before
    assert SegmentRun.objects.get(pk=running.pk).status == SegmentRun.Status.RUNNING


def test_incremental_membership_follows_points_and_keeps_sizes_right(published):
    from incentives.services import points_post
    from segments.models import Segment

    people, _run = published
    rich = segment_save(name="Rich", definition={"field": "points_balance", "op": "gte", "value": 500})
    assert rich.size == 0
    frequent_before = set(
        SegmentMembership.objects.filter(segment__slug="frequent").values_list("customer_id", flat=True)
    )
    points_post(customer=people[3], kind="earn", amount=600, reason="gift", idempotency_key="rich-1")
    change_some_orders(people)

    services.recompute_incremental(now=AS_OF)

    members = {
        slug: set(SegmentMembership.objects.filter(segment__slug=slug).values_list("customer_id", flat=True))
        for slug in ("rich", "frequent")
    }
    assert members["rich"] == {people[3].pk}  # points moved: looked at although no order changed
    assert members["frequent"] != frequent_before
    for segment in Segment.objects.filter(slug__in=members):  # sizes kept by enter/leave counts match the members
        assert segment.size == len(members[segment.slug])
    assert SegmentMembershipChange.objects.filter(segment=rich, change="enter").count() == 1


def test_incremental_membership_follows_a_late_event(published):
    """An event that arrives now, dated before the last run, still brings its customer
    into the re-evaluation (events are found by arrival, not by when they happened)."""
    from tests.users.factories import EventFactory

    people, _run = published
    checkers = segment_save(
        name="Checked in",
        definition={"field": "event", "event_type": "checkin", "op": "gte", "value": 1, "within_days": 3650},
    )
    assert checkers.size == 0
    EventFactory(customer=people[5], type="checkin", occurred_at=AS_OF - timedelta(days=40))

    services.recompute_incremental(now=AS_OF)

    members = set(SegmentMembership.objects.filter(segment=checkers).values_list("customer_id", flat=True))
    assert members == {people[5].pk}

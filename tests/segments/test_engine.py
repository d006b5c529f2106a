"""The full recompute against an independent pandas computation, and its edge cases."""

import time
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from core.errors import ApplicationError
from segments import rules, selectors, services
from segments.models import (
    AggregateStaging,
    CustomerScore,
    PredictionStaging,
    RuleSet,
    SegmentRun,
    SegmentSizeSnapshot,
    StageChange,
)
from users.models import Order

from .factories import (
    AS_OF,
    CustomerFactory,
    OrderFactory,
    ensure_rule_set,
    generate_history,
    reference_rfm,
    rule_set,
)

ROOT = Path(__file__).resolve().parents[2]


def scores_of(run) -> dict[int, CustomerScore]:
    return {s.customer_id: s for s in CustomerScore.objects.filter(run=run)}


def assert_matches_reference(run, *, as_of, t: rules.Thresholds):
    ref = reference_rfm(as_of=as_of, window_days=t.rfm_window_days)
    got = scores_of(run)
    assert set(got) == set(ref.index)
    mismatches = []
    for cid, row in ref.iterrows():
        s = got[cid]
        r = None if pd_isna(row["r_score"]) else int(row["r_score"])
        f = None if pd_isna(row["f_score"]) else int(row["f_score"])
        m = None if pd_isna(row["m_score"]) else int(row["m_score"])
        expected = {
            "recency_days": row["recency_days"],
            "frequency": int(row["frequency"]),
            "monetary": row["monetary"],
            "orders_total": int(row["orders_total"]),
            "r_score": r,
            "f_score": f,
            "m_score": m,
        }
        actual = {k: getattr(s, k) for k in expected}
        if actual != expected:
            mismatches.append((cid, expected, actual))
            continue
        tier = rules.tier(frequency=s.frequency, monetary=s.monetary, t=t)
        group = rules.rfm_group(r, f, m, t)
        stage = rules.stage(
            orders_total=s.orders_total,
            frequency=s.frequency,
            recency_days=s.recency_days,
            signup_age_days=row["signup_age_days"],
            p_alive=s.p_alive,
            t=t,
        )
        labels = {
            "tier": tier,
            "rfm_group": group,
            "rfm_segment": rules.rfm_segment(r, f, m, t),
            "stage": stage,
            "operating_class": rules.operating_class(stage_=stage, tier_=tier, group=group),
        }
        actual = {k: getattr(s, k) for k in labels}
        if actual != labels:
            mismatches.append((cid, labels, actual))
    assert not mismatches, f"{len(mismatches)} customers differ, first: {mismatches[:3]}"
    return ref


def pd_isna(value) -> bool:
    return value is None or value != value


@pytest.fixture
def history(db):
    return generate_history()


def test_recompute_matches_an_independent_pandas_computation(history):
    run = services.recompute_sync(as_of=AS_OF)
    assert run.status == SegmentRun.Status.PUBLISHED
    assert run.rule_set.version == 1
    ref = assert_matches_reference(run, as_of=AS_OF, t=rules.Thresholds.of(run.rule_set))
    # The generated data really has what the test is about.
    active = ref[ref["frequency"] > 0]
    assert active["monetary"].duplicated().sum() > 20
    assert active["recency_days"].duplicated().sum() > 20
    assert (ref["frequency"] == 0).sum() > 30 and (ref["orders_total"] > 0).sum() > (ref["frequency"] > 0).sum()
    assert Counter(active["r_score"]).keys() == {1, 2, 3, 4, 5}
    assert Order.objects.exclude(status="paid").count() > 200
    # Every tier occurs, so the tier thresholds were really compared.
    assert {s.tier for s in CustomerScore.objects.filter(run=run)} >= {
        "super_vip",
        "core",
        "active",
        "normal",
        "potential",
        "",
    }
    assert run.counts["customers"] == len(ref)
    assert set(run.phases) >= {"aggregate", "model_fit", "model_predict", "score", "publish"}
    # Staging is cleaned up after publishing.
    assert not AggregateStaging.objects.filter(run_id=run.pk).exists()
    assert not PredictionStaging.objects.filter(run_id=run.pk).exists()


def test_results_do_not_depend_on_chunking(history):
    one = services.recompute_sync(as_of=AS_OF)
    many = services.recompute_sync(as_of=AS_OF, chunk_size=37)
    assert many.chunks_total >= 8 and many.chunks_done == many.chunks_total
    fields = ("recency_days", "frequency", "monetary", "r_score", "f_score", "m_score", "tier", "rfm_group", "stage")
    a, b = scores_of(one), scores_of(many)
    assert {c: [getattr(s, f) for f in fields] for c, s in a.items()} == {
        c: [getattr(s, f) for f in fields] for c, s in b.items()
    }


def test_size_snapshots_equal_the_group_counts(history):
    run = services.recompute_sync(as_of=AS_OF)
    snapshots = {s.key: s.size for s in SegmentSizeSnapshot.objects.filter(run=run)}
    expected = {}
    for score in CustomerScore.objects.filter(run=run):
        for dim in ("stage", "tier", "rfm_group", "rfm_segment", "operating_class"):
            value = getattr(score, dim)
            if value:
                expected[f"{dim}:{value}"] = expected.get(f"{dim}:{value}", 0) + 1
    assert snapshots == expected
    assert all(s.as_of == AS_OF for s in SegmentSizeSnapshot.objects.filter(run=run))


def test_equal_totals_get_equal_scores_whatever_the_order_of_the_amounts(db):
    # 0.1 + 0.2 + 0.3 summed in floating point in two orders gives two different numbers.
    a, b = CustomerFactory(), CustomerFactory()
    for customer, amounts in ((a, ["0.10", "0.20", "0.30"]), (b, ["0.30", "0.20", "0.10"])):
        for i, amount in enumerate(amounts):
            OrderFactory(customer=customer, amount=Decimal(amount), occurred_at=AS_OF - timedelta(days=10 - i))
    run = services.recompute_sync(as_of=AS_OF)
    sa, sb = scores_of(run)[a.pk], scores_of(run)[b.pk]
    assert sa.monetary == sb.monetary == Decimal("0.60")
    assert sa.m_score == sb.m_score == 5


def test_recency_is_whole_days_rounded_down(db):
    customer = CustomerFactory()
    OrderFactory(customer=customer, occurred_at=AS_OF - timedelta(days=2, hours=20))
    other = CustomerFactory()
    OrderFactory(customer=other, occurred_at=AS_OF - timedelta(days=3))
    run = services.recompute_sync(as_of=AS_OF)
    assert scores_of(run)[customer.pk].recency_days == 2
    assert scores_of(run)[other.pk].recency_days == 3
    assert scores_of(run)[customer.pk].r_score == 5 and scores_of(run)[other.pk].r_score == 3


def test_refunded_and_cancelled_orders_change_nothing(db):
    a, b = CustomerFactory(), CustomerFactory()
    for customer in (a, b):
        OrderFactory(customer=customer, amount=Decimal("300.00"), occurred_at=AS_OF - timedelta(days=40))
        OrderFactory(customer=customer, amount=Decimal("120.00"), occurred_at=AS_OF - timedelta(days=20))
    OrderFactory(customer=a, amount=Decimal("90000.00"), status="refunded", occurred_at=AS_OF - timedelta(days=1))
    OrderFactory(customer=a, amount=Decimal("5000.00"), status="cancelled", occurred_at=AS_OF - timedelta(days=2))
    run = services.recompute_sync(as_of=AS_OF)
    sa, sb = scores_of(run)[a.pk], scores_of(run)[b.pk]
    fields = ("recency_days", "frequency", "monetary", "orders_total", "r_score", "f_score", "m_score", "tier", "stage")
    assert [getattr(sa, f) for f in fields] == [getattr(sb, f) for f in fields]
    assert sa.frequency == 2 and sa.monetary == Decimal("420.00") and sa.recency_days == 20 and sa.tier == "normal"

    # Refunding a paid order afterwards takes it out on the next run.
    Order.objects.filter(customer=b, amount=Decimal("120.00")).update(status="refunded")
    run2 = services.recompute_sync(as_of=AS_OF)
    sb2 = scores_of(run2)[b.pk]
    assert (sb2.frequency, sb2.monetary, sb2.recency_days, sb2.tier) == (1, Decimal("300.00"), 40, "potential")


def test_no_paid_orders_is_a_clear_error_and_the_last_results_stay(db):
    with pytest.raises(ApplicationError) as exc:
        services.recompute_sync(as_of=AS_OF)  # an empty base
    assert exc.value.code == "no_orders"
    assert not SegmentRun.objects.exists()

    customer = CustomerFactory()
    order = OrderFactory(customer=customer, occurred_at=AS_OF - timedelta(days=5))
    good = services.recompute_sync(as_of=AS_OF)
    order.status = "refunded"
    order.save()
    with pytest.raises(ApplicationError) as exc:
        services.recompute_sync()
    assert exc.value.code == "no_orders"
    assert selectors.run_published() == good
    assert SegmentRun.objects.count() == 1
    assert selectors.customer_profile_segments(customer=customer)["rfm"]["frequency"] == 1


def test_a_single_customer_with_one_order(db):
    customer = CustomerFactory()
    OrderFactory(customer=customer, amount=Decimal("99.00"), occurred_at=AS_OF - timedelta(days=12))
    run = services.recompute_sync(as_of=AS_OF)
    s = scores_of(run)[customer.pk]
    # n = 1: k = 1 for every score, ceil(5 × 1 / 1) = 5.
    assert (s.r_score, s.f_score, s.m_score) == (5, 5, 5)
    assert (s.recency_days, s.frequency, s.monetary) == (12, 1, Decimal("99.00"))
    # Nobody bought twice: the model cannot be fitted, so no churn prediction.
    assert s.p_alive is None and run.model_params.get("refit") is False
    assert (s.rfm_group, s.rfm_segment, s.tier, s.stage, s.operating_class) == (
        "high_value",
        "champions",
        "potential",
        "growing",
        "core_value",
    )


def test_an_as_of_in_the_future_is_refused(db):
    OrderFactory(occurred_at=AS_OF - timedelta(days=1))
    from django.utils import timezone

    with pytest.raises(ApplicationError) as exc:
        services.recompute_sync(as_of=timezone.now() + timedelta(days=1))
    assert exc.value.code == "as_of_in_future"
    assert not SegmentRun.objects.exists()


def test_an_as_of_in_the_past_ignores_later_orders_and_customers(db):
    early = CustomerFactory()
    OrderFactory(customer=early, amount=Decimal("100.00"), occurred_at=AS_OF - timedelta(days=50))
    OrderFactory(customer=early, amount=Decimal("700.00"), occurred_at=AS_OF - timedelta(days=5))
    late = CustomerFactory(signup_at=AS_OF - timedelta(days=10))
    OrderFactory(customer=late, occurred_at=AS_OF - timedelta(days=3))
    back = AS_OF - timedelta(days=20)
    run = services.recompute_sync(as_of=back)
    got = scores_of(run)
    assert set(got) == {early.pk}
    assert (got[early.pk].frequency, got[early.pk].monetary, got[early.pk].recency_days) == (1, Decimal("100.00"), 30)
    assert run.as_of == back


def test_a_rule_edit_takes_effect_on_the_next_run(history):
    first = services.recompute_sync(as_of=AS_OF)
    base = rule_set()
    new = services.rule_set_save_new_version(
        base=base, changes={"mature_min_orders": 2, "tier_super_vip_annual": Decimal("60000")}
    )
    assert new.version == 2 and new.is_active and not RuleSet.objects.get(pk=base.pk).is_active
    second = services.recompute_sync(as_of=AS_OF)
    assert first.rule_set.version == 1 and second.rule_set.version == 2
    assert_matches_reference(second, as_of=AS_OF, t=rules.Thresholds.of(new))
    before, after = scores_of(first), scores_of(second)
    moved = {c for c in after if before[c].stage == "growing" and after[c].stage == "mature"}
    assert moved and all(after[c].frequency == 2 for c in moved)
    assert any(before[c].tier == "core" and after[c].tier == "super_vip" for c in after)
    # Stage changes on the second run: exactly the customers whose stage moved.
    changes = StageChange.objects.filter(run=second)
    assert {c.customer_id for c in changes} == {c for c in after if before[c].stage != after[c].stage}
    assert all(
        c.from_stage == before[c.customer_id].stage and c.to_stage == after[c.customer_id].stage for c in changes
    )


def test_a_rule_set_that_makes_no_sense_is_refused_and_nothing_changes(history):
    run = services.recompute_sync(as_of=AS_OF)
    for changes in (
        {"rfm_window_days": 0},
        {"tier_normal_monthly": Decimal("3000")},
        {"rfm_groups": [{"code": "x", "r": [0, 5], "f": [1, 5], "m": [1, 5]}]},
    ):
        with pytest.raises(ApplicationError) as exc:
            services.rule_set_save_new_version(base=rule_set(), changes=changes)
        assert exc.value.code == "invalid_rule_set"
        assert set(exc.value.details) == {next(iter(changes))}
    assert RuleSet.objects.count() == 1 and rule_set().version == 1
    assert selectors.run_published() == run


def test_stage_history_and_transition_matrix(history):
    first = services.recompute_sync(as_of=AS_OF)
    one = scores_of(first)
    first_changes = StageChange.objects.filter(run=first)
    assert first_changes.count() == len(one)
    assert all(c.from_stage == "" and c.to_stage == one[c.customer_id].stage and c.at == AS_OF for c in first_changes)

    # Three weeks later some customers bought again and a few new ones arrived.
    later = AS_OF + timedelta(days=21)
    buyers = list(one)[::9]
    for cid in buyers:
        OrderFactory(customer_id=cid, amount=Decimal("199.00"), occurred_at=later - timedelta(days=1))
    newcomers = [CustomerFactory(signup_at=later - timedelta(days=2)) for _ in range(3)]
    second = services.recompute_sync(as_of=later)
    two = scores_of(second)
    changed = {c for c in two if c not in one or one[c].stage != two[c].stage}
    assert changed
    assert {c.customer_id for c in StageChange.objects.filter(run=second)} == changed
    assert {n.pk for n in newcomers} <= changed
    reactivated = [c for c in StageChange.objects.filter(run=second) if c.reactivated]
    assert all(
        c.from_stage in ("churn_warning", "churned") and c.to_stage in ("new", "growing", "mature") for c in reactivated
    )
    assert reactivated, "some churned buyers came back"

    matrix = selectors.transition_matrix(start=AS_OF, end=later)
    expected = Counter((one[c].stage if c in one else "none", two[c].stage) for c in two)
    got = Counter({(a, b): n for a, row in matrix.items() for b, n in row.items()})
    assert got == expected
    # Between two instants before the second run, nobody moved.
    still = selectors.transition_matrix(start=AS_OF, end=AS_OF + timedelta(days=1))
    assert all(a == b for a, row in still.items() for b in row)


# --- One flow through a real worker ----------------------------------------------------------


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_recompute_fans_out_on_a_real_worker(worker_queue):
    from segments.tasks import segments_recompute_task

    ensure_rule_set()
    generate_history(customers=60, orders=400, seed=3)
    result = segments_recompute_task.delay(None, chunk_size=20)
    deadline = time.monotonic() + 120
    run = None
    while time.monotonic() < deadline:
        run = SegmentRun.objects.order_by("-pk").first()
        if run is not None and run.status in (SegmentRun.Status.PUBLISHED, SegmentRun.Status.FAILED):
            break
        time.sleep(0.5)
    assert run is not None and run.status == SegmentRun.Status.PUBLISHED, (run and run.error, worker_queue.poll())
    assert result.id
    assert run.chunks_total >= 3 and run.chunks_done == run.chunks_total
    assert CustomerScore.objects.filter(run=run).count() == run.counts["customers"] > 0
    assert selectors.run_published() == run
    assert_matches_reference(run, as_of=run.as_of, t=rules.Thresholds.of(run.rule_set))

"""Races against real PostgreSQL connections: one thread = one connection.

Every thread waits on a barrier so the calls really start together, and closes
its connection at the end. The ledger is then checked exactly."""

import threading
from collections import Counter

import pytest
from django.db import connection

from core.errors import ApplicationError
from incentives import services
from incentives.models import PointsAccount, PointsEntry, Redemption, Reward

from .factories import CustomerFactory, RewardFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _race(calls):
    """Runs each zero-argument callable in its own thread, all released at once.
    Returns one result per call: ("ok", value) or ("refused", code) or ("error", repr)."""
    barrier = threading.Barrier(len(calls), timeout=60)
    results = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait()
            results[i] = ("ok", call())
        except ApplicationError as exc:
            results[i] = ("refused", exc.code)
        except Exception as exc:  # any other error fails the test below
            results[i] = ("error", repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    errors = [r for r in results if r[0] == "error"]
    assert not errors, errors
    return results


def _post(customer, kind, amount, key):
    return lambda: services.points_post(
        customer=customer, kind=kind, amount=amount, reason=f"race {kind}", idempotency_key=key
    )


def _assert_ledger_consistent(customer):
    running = 0
    for entry in PointsEntry.objects.filter(customer=customer).order_by("id"):
        running += entry.amount
        assert entry.balance_after == running, entry
        assert entry.balance_after >= 0, entry
    assert PointsAccount.objects.get(customer=customer).balance == running
    assert services.ledger_reconcile() == []
    return running


def test_mixed_earns_and_spends_for_one_customer():
    c = CustomerFactory()
    services.points_post(customer=c, kind="earn", amount=300, reason="start", idempotency_key="start")

    calls, labels = [], []
    for i in range(20):
        calls.append(_post(c, "earn", 10, f"earn-{i}"))
        labels.append(("earn", f"earn-{i}", 10))
    for i in range(30):
        calls.append(_post(c, "spend", 30, f"spend-{i}"))
        labels.append(("spend", f"spend-{i}", -30))
    # replays: the same key and body from several threads, and the same key with another body
    for _ in range(5):
        calls.append(_post(c, "earn", 7, "dup-earn"))
        labels.append(("dup-earn-7", "dup-earn", 7))
    for _ in range(2):
        calls.append(_post(c, "earn", 8, "dup-earn"))
        labels.append(("dup-earn-8", "dup-earn", 8))
    for _ in range(5):
        calls.append(_post(c, "spend", 11, "dup-spend"))
        labels.append(("dup-spend", "dup-spend", -11))
    assert len(calls) >= 50

    results = _race(calls)

    applied = {}  # key → signed amount that was written
    replays = Counter()
    refused = Counter()
    for (label, key, amount), (status, value) in zip(labels, results, strict=True):
        if status == "ok":
            assert value.entry.idempotency_key == key
            if value.replayed:
                replays[key] += 1
            else:
                assert key not in applied, f"{key} applied twice"
                assert value.entry.amount == amount
                applied[key] = amount
        else:
            refused[(label, value)] += 1

    # every earn succeeded; every failed spend failed for lack of points
    assert all(f"earn-{i}" in applied for i in range(20))
    assert set(refused) <= {
        ("spend", "insufficient_points"),
        ("dup-spend", "insufficient_points"),
        ("dup-earn-7", "idempotency_key_reused"),
        ("dup-earn-8", "idempotency_key_reused"),
    }
    spends_ok = sum(1 for k in applied if k.startswith("spend-"))
    assert spends_ok + refused[("spend", "insufficient_points")] == 30
    assert refused[("spend", "insufficient_points")] >= 30 - (300 + 200 + 8) // 30  # the balance cannot cover them all

    # "dup-earn" went in once, with whichever body came first; the other body is a 409
    winner = applied["dup-earn"]
    same, other = (5, 2) if winner == 7 else (2, 5)
    assert replays["dup-earn"] == same - 1
    assert refused[(f"dup-earn-{15 - winner}", "idempotency_key_reused")] == other
    # "dup-spend" went in at most once; the other calls replayed it or, when they ran at
    # a moment the balance could not cover it, were refused
    assert replays["dup-spend"] + refused[("dup-spend", "insufficient_points")] == 5 - ("dup-spend" in applied)

    # the ledger holds exactly the applied entries, in a consistent order
    keys = list(PointsEntry.objects.filter(customer=c).values_list("idempotency_key", flat=True))
    assert sorted(keys) == sorted(["start", *applied])
    final = _assert_ledger_consistent(c)
    assert final == 300 + sum(applied.values())


def test_concurrent_spends_beyond_the_balance():
    c = CustomerFactory()
    services.points_post(customer=c, kind="earn", amount=250, reason="start", idempotency_key="start")
    results = _race([_post(c, "spend", 20, f"s-{i}") for i in range(25)])
    outcomes = Counter(r[0] if r[0] == "ok" else r[1] for r in results)
    assert outcomes == {"ok": 250 // 20, "insufficient_points": 25 - 250 // 20}
    assert _assert_ledger_consistent(c) == 250 % 20
    assert PointsEntry.objects.filter(customer=c, kind="spend").count() == 12


def test_concurrent_redemptions_never_oversell():
    reward = RewardFactory(points_price=100, stock=5)
    customers = [CustomerFactory() for _ in range(20)]
    for c in customers:
        services.points_post(customer=c, kind="earn", amount=1000, reason="start", idempotency_key="start")

    def redeem(c):
        return lambda: services.reward_redeem(customer=c, reward_id=reward.pk, idempotency_key="r-1")[0].pk

    results = _race([redeem(c) for c in customers])
    won = [c for c, r in zip(customers, results, strict=True) if r[0] == "ok"]
    lost = [c for c, r in zip(customers, results, strict=True) if r[0] != "ok"]
    assert len(won) == 5
    assert {r[1] for r in results if r[0] != "ok"} == {"out_of_stock"}
    assert Reward.objects.get(pk=reward.pk).stock == 0
    assert Redemption.objects.count() == 5
    assert set(Redemption.objects.values_list("customer_id", flat=True)) == {c.pk for c in won}
    for c in won:
        assert PointsAccount.objects.get(customer=c).balance == 900
    for c in lost:  # the failures wrote nothing
        assert PointsAccount.objects.get(customer=c).balance == 1000
        assert PointsEntry.objects.filter(customer=c).count() == 1
    assert services.ledger_reconcile() == []


def test_concurrent_redemption_replays_take_stock_once():
    reward = RewardFactory(points_price=100, stock=3)
    c = CustomerFactory()
    services.points_post(customer=c, kind="earn", amount=1000, reason="start", idempotency_key="start")
    results = _race(
        [
            lambda: services.reward_redeem(customer=c, reward_id=reward.pk, idempotency_key="same")[0].pk
            for _ in range(10)
        ]
    )
    assert {r[0] for r in results} == {"ok"}
    assert len({r[1] for r in results}) == 1
    assert Reward.objects.get(pk=reward.pk).stock == 2
    assert _assert_ledger_consistent(c) == 900


def _batch(customers, steps, tag):
    """A batch touching the customers in the given order: an earn of 10 then a spend of 7 each."""
    requests = []
    for c in customers:
        requests.append(
            services.EntryRequest(
                customer_id=c.pk, timezone=c.timezone, kind="earn", amount=10, reason="race", idempotency_key=f"{tag}-e"
            )
        )
        for s in range(steps):
            requests.append(
                services.EntryRequest(
                    customer_id=c.pk,
                    timezone=c.timezone,
                    kind="spend",
                    amount=7,
                    reason="race",
                    idempotency_key=f"{tag}-s{s}",
                )
            )
    return lambda: services.points_post_batch(requests=requests)


def test_overlapping_batches_on_new_accounts_never_deadlock_or_drift():
    # Most of these customers have no account yet: the batches create and lock them
    # concurrently, each listing them in its own shuffled order.
    import random

    customers = [CustomerFactory() for _ in range(15)]
    for c in customers[::3]:  # some accounts exist already, the rest are created under the race
        services.points_post(customer=c, kind="earn", amount=1, reason="start", idempotency_key="start")
    rng = random.Random(5)
    calls = []
    for t in range(16):
        order = customers[:]
        rng.shuffle(order)
        calls.append(_batch(order[: 8 + t % 8], 2, f"t{t}"))
    results = _race(calls)
    assert {r[0] for r in results} == {"ok"}
    written = Counter()
    for status, outcomes in results:
        assert status == "ok"
        for o in outcomes:
            if o.error is None:
                written[o.entry.customer_id] += o.entry.amount
            else:
                assert o.error.code == "insufficient_points"
    for c in customers:
        assert _assert_ledger_consistent(c) == written[c.pk] + (c in customers[::3])
    # each batch earns 10 then asks 7 twice: the second spend fits only when earlier batches left enough
    assert PointsEntry.objects.filter(kind="earn").exclude(idempotency_key="start").count() == sum(
        8 + t % 8 for t in range(16)
    )


def test_concurrent_rule_tasks_for_one_order_converge_on_its_status():
    """The worker may run several tasks for one order at once (a retry, a status flip and
    back): they serialise on the account lock and read the status under it."""
    from users.models import Order

    from .factories import OrderFactory, seed_defaults

    seed_defaults()
    c = CustomerFactory()
    order = OrderFactory(customer=c, amount="200.00", status="paid")
    services.order_rules_apply(order_ids=[order.pk])
    Order.objects.filter(pk=order.pk).update(status="refunded")
    results = _race([lambda: services.order_rules_apply(order_ids=[order.pk]) for _ in range(8)])
    assert sorted(r[1] for r in results) == [0] * 7 + [1]  # one reversal, whoever got the lock first
    Order.objects.filter(pk=order.pk).update(status="paid")
    results = _race([lambda: services.order_rules_apply(order_ids=[order.pk]) for _ in range(8)])
    assert sorted(r[1] for r in results) == [0] * 7 + [1]  # earned again once
    kinds = list(PointsEntry.objects.filter(customer=c).order_by("id").values_list("kind", "amount"))
    assert kinds == [("earn", 200), ("reverse", -200), ("earn", 200)]
    assert _assert_ledger_consistent(c) == 200


def _growth_by_ledger():
    from django.db.models import Sum

    return dict(PointsEntry.objects.values("customer_id").annotate(g=Sum("growth")).values_list("customer_id", "g"))


def test_nightly_growth_recompute_keeps_the_growth_of_a_post_committing_meanwhile():
    """A deterministic interleaving: a purchase has written its entry and growth under
    the account lock but not committed when the nightly pass starts; the pass waits for
    the lock (seen in ``pg_blocking_pids``), then the post commits. The recomputed growth
    must hold that entry — a pass summing the ledger in a snapshot taken before the
    commit writes it back without."""
    from django.db import transaction

    from .factories import OrderFactory, seed_defaults

    seed_defaults()
    customers = [CustomerFactory() for _ in range(3)]
    for c in customers:
        services.order_rules_apply(order_ids=[OrderFactory(customer=c, amount="100.00", status="paid").pk])
    PointsAccount.objects.filter(customer=customers[2]).update(growth_value=999)  # the pass must correct this one
    late = OrderFactory(customer=customers[1], amount="50.00", status="paid")
    posted, pid_known = threading.Event(), threading.Event()
    level_pid, blocked = [], []

    def post():
        with transaction.atomic():
            services.order_rules_apply(order_ids=[late.pk])
            posted.set()
            assert pid_known.wait(30)
            with connection.cursor() as cur:
                for _ in range(600):  # until the level pass waits on this transaction's lock
                    cur.execute("SELECT cardinality(pg_blocking_pids(%s)) > 0", [level_pid[0]])
                    if cur.fetchone()[0]:
                        blocked.append(True)
                        break
                    cur.execute("SELECT pg_sleep(0.05)")
        return "committed"

    def level_pass():
        assert posted.wait(30)
        with connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            level_pid.append(cur.fetchone()[0])
        pid_known.set()
        return services.levels_update(recompute_growth=True)

    results = _race([post, level_pass])
    assert [r[0] for r in results] == ["ok", "ok"]
    assert blocked, "the level pass never waited for the post's lock: the interleaving did not happen"
    ledger = _growth_by_ledger()
    assert ledger[customers[1].pk] == 150
    assert {a.customer_id: a.growth_value for a in PointsAccount.objects.all()} == ledger


def test_level_pass_racing_many_posts_loses_no_growth():
    from .factories import OrderFactory, seed_defaults

    seed_defaults()
    customers = [CustomerFactory() for _ in range(6)]
    for c in customers:
        services.order_rules_apply(order_ids=[OrderFactory(customer=c, amount="10.00", status="paid").pk])
    orders = [OrderFactory(customer=customers[i % 6], amount=f"{5 + i}.00", status="paid") for i in range(18)]
    calls = [lambda o=o: services.order_rules_apply(order_ids=[o.pk]) for o in orders]
    calls += [lambda: services.levels_update(recompute_growth=True) for _ in range(3)]
    results = _race(calls)
    assert {r[0] for r in results} == {"ok"}
    ledger = _growth_by_ledger()
    assert sum(ledger.values()) == 60 + sum(5 + i for i in range(18))
    assert {a.customer_id: a.growth_value for a in PointsAccount.objects.all()} == ledger

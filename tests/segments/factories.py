"""Data builders for the segments tests: the users factories plus a seeded generator
of a realistic order history (many ties, refunds, cancellations, inactive buyers)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

from segments.models import RuleSet, Segment
from tests.users.factories import CustomerFactory, EventFactory, OrderFactory
from users.models import Customer, Order

__all__ = [
    "AS_OF",
    "CustomerFactory",
    "EventFactory",
    "OrderFactory",
    "ensure_rule_set",
    "generate_history",
    "reference_rfm",
    "rule_set",
    "segment",
]

# A fixed instant in the past (as-of dates in the future are refused).
AS_OF = datetime(2026, 10, 31, 12, 0, tzinfo=UTC)


def ensure_rule_set() -> RuleSet:
    """The migration's rule set v1. A transactional test starts after another one's flush,
    which also empties the tables data migrations filled."""
    from segments.models import default_rfm_groups, default_rfm_segments

    if not RuleSet.objects.exists():
        RuleSet.objects.create(
            version=1, note="SPEC.md defaults", rfm_groups=default_rfm_groups(), rfm_segments=default_rfm_segments()
        )
    return rule_set()


def rule_set() -> RuleSet:
    return RuleSet.objects.filter(is_active=True).order_by("-version").get()


def segment(slug: str, definition: dict) -> Segment:
    return Segment.objects.create(slug=slug, name=slug, definition=definition)


def generate_history(*, customers: int = 300, orders: int = 3000, seed: int = 7, as_of: datetime = AS_OF):
    """Customers and orders with numpy (seeded). Returns the customers in id order.

    - amounts come from a small menu, so monetary totals tie often;
    - order times fall on whole hours of a limited set of days, so last orders and
      recency tie often (and some fall exactly on the window boundary);
    - about 8% refunded and 4% cancelled;
    - ~10% of customers order only before the window, ~15% never order;
    - a few customers sign up recently (the "new" stage), a few after ``as_of``;
    - a few orders lie after ``as_of`` (they must be ignored).
    """
    rng = np.random.default_rng(seed)
    signup_days_before = rng.integers(0, 900, size=customers)
    objs = []
    for i in range(customers):
        signup = as_of - timedelta(days=int(signup_days_before[i]), hours=int(rng.integers(0, 24)))
        if i % 97 == 5:
            signup = as_of + timedelta(days=3)  # not known yet at as-of
        objs.append(CustomerFactory.build(signup_at=signup))
    Customer.objects.bulk_create(objs)
    people = list(Customer.objects.order_by("id"))
    n = len(people)
    kind = rng.random(n)
    never = kind < 0.15
    old_only = (kind >= 0.15) & (kind < 0.25)
    buyers = np.flatnonzero(~never)
    weights = rng.pareto(1.5, size=len(buyers)) + 0.2
    weights /= weights.sum()
    who = rng.choice(buyers, size=orders, p=weights)
    menu = np.array(["9.90", "19.90", "49.00", "99.00", "99.00", "199.00", "500.00", "1288.00", "3999.00", "12000.00"])
    amount_idx = rng.integers(0, len(menu), size=orders)
    # Order days: a limited set of days back from as-of (ties on the same hour).
    day_back = rng.choice(np.arange(0, 700, 3), size=orders)
    hour = rng.choice([0, 8, 12, 20], size=orders)
    status_roll = rng.random(orders)
    rows = []
    for j in range(orders):
        c = int(who[j])
        back = int(day_back[j])
        if old_only[c]:
            back = 366 + back % 300
        at = as_of - timedelta(days=back) + timedelta(hours=int(hour[j]) - 12)
        if j % 211 == 0:
            at = as_of - timedelta(days=365)  # exactly on the window's open boundary: outside
        if j % 331 == 1:
            at = as_of + timedelta(days=2)  # after as-of: ignored
        status = "refunded" if status_roll[j] < 0.08 else "cancelled" if status_roll[j] < 0.12 else "paid"
        rows.append(
            Order(
                external_id=f"g{seed}-{j:06d}",
                customer=people[c],
                amount=Decimal(menu[amount_idx[j]]),
                status=status,
                occurred_at=at,
            )
        )
    Order.objects.bulk_create(rows, batch_size=1000)
    return people


# --- An independent reference computation (pandas, from the Order rows) ------------------


def reference_rfm(*, as_of: datetime, window_days: int = 365):
    """Per-customer R, F, M, orders_total, signup age and r/f/m scores, computed from the
    Order and Customer rows with pandas — no SQL shared with the engine.

    Scores are ``ceil(5 × cume_dist)`` over customers with F > 0, where cume_dist is
    ``rank(method="max", pct=True)`` (ranks kept as integers so the ceiling is exact)."""
    import math
    from fractions import Fraction

    import pandas as pd

    people = pd.DataFrame.from_records(
        Customer.objects.values("id", "signup_at", "created_at"), columns=["id", "signup_at", "created_at"]
    )
    people["known_at"] = people["signup_at"].fillna(people["created_at"])
    people = people[people["known_at"] <= as_of].set_index("id")
    orders = pd.DataFrame.from_records(
        Order.objects.values("customer_id", "amount", "status", "occurred_at"),
        columns=["customer_id", "amount", "status", "occurred_at"],
    )
    paid = orders[(orders["status"] == "paid") & (orders["occurred_at"] <= as_of)].copy()
    paid["cents"] = paid["amount"].map(lambda d: int(d * 100))
    start = as_of - timedelta(days=window_days)
    in_window = paid[paid["occurred_at"] > start]

    out = pd.DataFrame(index=people.index)
    out["orders_total"] = paid.groupby("customer_id").size().reindex(out.index, fill_value=0)
    last = paid.groupby("customer_id")["occurred_at"].max().reindex(out.index)
    out["recency_days"] = pd.Series(
        [None if pd.isna(v) else int((as_of - v) // timedelta(days=1)) for v in last], index=out.index, dtype=object
    )
    out["frequency"] = in_window.groupby("customer_id").size().reindex(out.index, fill_value=0)
    cents = in_window.groupby("customer_id")["cents"].sum().reindex(out.index, fill_value=0)
    out["monetary"] = [Decimal(int(c)) / 100 for c in cents]
    out["signup_age_days"] = [(as_of - v).total_seconds() / 86400 for v in people["known_at"]]

    active = out[out["frequency"] > 0]
    n = len(active)
    scores = pd.DataFrame(index=active.index)
    ranks = {
        # R: fewer days is better, so rank descending (the largest recency is worst, rank 1).
        "r_score": active["recency_days"].astype(int).rank(method="max", ascending=False),
        "f_score": active["frequency"].rank(method="max"),
        "m_score": pd.Series(cents[active.index], index=active.index).rank(method="max"),
    }
    pct = active["frequency"].rank(method="max", pct=True)
    assert all(abs(p * n - k) < 1e-9 for p, k in zip(pct, ranks["f_score"], strict=True))
    for col, rank in ranks.items():
        scores[col] = [math.ceil(Fraction(5 * int(k), n)) for k in rank]
    out = out.join(scores)
    return out

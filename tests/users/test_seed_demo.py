from datetime import UTC, datetime
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count, F, Max, Min, Sum

from users.demo import DemoSpec, demo_generate
from users.models import Customer, CustomerTag, Event, Order

NOW = "2026-05-01T12:00:00+00:00"
SMALL = ["--customers", "300", "--orders", "2000", "--seed", "7", "--now", NOW]


def _seed(*extra: str) -> str:
    out = StringIO()
    call_command("seed_demo", *SMALL, *extra, stdout=out)
    return out.getvalue()


def _fingerprint() -> dict:
    return {
        "customers": Customer.objects.count(),
        "referred": Customer.objects.filter(referred_by__isnull=False).count(),
        "tags": CustomerTag.objects.count(),
        "orders_by_status": dict(Order.objects.values_list("status").annotate(n=Count("id")).order_by("status")),
        "amount": Order.objects.aggregate(s=Sum("amount"))["s"],
        "order_times": Order.objects.aggregate(a=Min("occurred_at"), b=Max("occurred_at")),
        "events_by_type": dict(Event.objects.values_list("type").annotate(n=Count("id")).order_by("type")),
        "paid_rollup": Customer.objects.aggregate(n=Sum("paid_orders"), s=Sum("paid_amount")),
        "names": list(Customer.objects.order_by("external_id").values_list("name", "phone", "city")[:20]),
    }


@pytest.mark.django_db(transaction=False)
def test_seed_demo_is_deterministic_and_realistic():
    out = _seed()
    assert "customers 300" in out and "orders    2,000" in out
    first = _fingerprint()
    assert first["customers"] == 300
    assert sum(first["orders_by_status"].values()) == 2000
    assert first["orders_by_status"].get("refunded", 0) > 0
    assert first["orders_by_status"]["paid"] > 1800
    assert first["referred"] > 0
    assert set(first["events_by_type"]) >= {"login", "page_view", "add_to_cart", "checkin", "invite"}
    # The roll-up was refreshed: it counts paid orders only.
    assert first["paid_rollup"]["n"] == first["orders_by_status"]["paid"]
    assert first["order_times"]["b"] <= datetime.fromisoformat(NOW)

    _seed("--reset", "--no-users")
    assert _fingerprint() == first


@pytest.mark.django_db
def test_seed_demo_keeps_time_order():
    _seed("--no-users")
    # Invite chains only point at earlier signups.
    assert not Customer.objects.filter(referred_by__signup_at__gte=F("signup_at")).exists()
    assert not Customer.objects.filter(referred_by_id=F("id")).exists()
    # Orders and events come after the customer signed up, and before --now.
    assert not Order.objects.filter(occurred_at__lt=F("customer__signup_at")).exists()
    assert not Event.objects.filter(occurred_at__lt=F("customer__signup_at")).exists()
    assert not Event.objects.filter(occurred_at__gt=datetime.fromisoformat(NOW)).exists()
    assert Event.objects.filter(dedupe_key__startswith="demo:").count() == Event.objects.count()
    # Each referred customer has an invite event from the referrer.
    referred = Customer.objects.filter(referred_by__isnull=False).count()
    assert Event.objects.filter(type="invite").count() == referred
    # …and each referred customer accepted it (what the invite rule pays and the leaderboard counts).
    accepted = Event.objects.filter(type="invite_accepted")
    assert accepted.count() == referred
    assert not accepted.filter(customer__referred_by__isnull=True).exists()
    assert not accepted.filter(occurred_at__lt=F("customer__signup_at")).exists()
    # The funnel narrows: product views ≥ carts ≥ orders.
    views = Event.objects.filter(type="page_view").count()
    carts = Event.objects.filter(type="add_to_cart").count()
    assert views >= carts >= Order.objects.count()


@pytest.mark.django_db
def test_seed_demo_refuses_to_mix_with_existing_customers():
    _seed("--no-users")
    with pytest.raises(CommandError, match="--reset"):
        _seed("--no-users")
    assert Customer.objects.count() == 300


@pytest.mark.django_db
def test_seed_demo_creates_the_operator_accounts():
    _seed()
    expected = {
        "admin": ("admin", "opsdesk-admin-2026", True),
        "operator": ("operator", "opsdesk-operator-2026", False),
        "community": ("community_manager", "opsdesk-community-2026", False),
        "viewer": ("viewer", "opsdesk-viewer-2026", False),
    }
    for username, (group, password, staff) in expected.items():
        user = get_user_model().objects.get(username=username)
        assert user.check_password(password), username
        assert user.is_active
        assert list(user.groups.values_list("name", flat=True)) == [group]
        assert user.is_staff is staff
        assert user.is_superuser is False
    # A rerun resets the accounts instead of failing on them.
    _seed("--reset")


def test_generator_is_pure_and_seeded():
    spec = DemoSpec(customers=200, orders=1500, seed=3, now=datetime(2026, 5, 1, tzinfo=UTC))
    a, b = demo_generate(spec), demo_generate(spec)
    assert a.orders.amount_cents.tolist() == b.orders.amount_cents.tolist()
    assert a.events.properties == b.events.properties
    assert a.customers.name == b.customers.name
    other = demo_generate(DemoSpec(customers=200, orders=1500, seed=4, now=spec.now))
    assert other.orders.amount_cents.tolist() != a.orders.amount_cents.tolist()
    # Order counts per customer are heavy-tailed: the top 10% of buyers place a large share.
    per = sorted((a.orders.customer == i).sum() for i in range(200))
    assert sum(per[-20:]) > 0.3 * len(a.orders)

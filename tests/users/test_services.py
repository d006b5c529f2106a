from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.batch import validate_batch
from core.models import AuditEntry
from users.models import Customer, CustomerTag
from users.rows import CustomerRow
from users.services import customer_order_stats_refresh, customer_unsubscribe, customers_upsert_batch

from .factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db


def _at(day: int) -> datetime:
    return datetime(2026, 3, day, 12, tzinfo=UTC)


def test_order_stats_count_paid_orders_only():
    customer = CustomerFactory()
    OrderFactory(customer=customer, amount=Decimal("10.00"), occurred_at=_at(2))
    OrderFactory(customer=customer, amount=Decimal("25.50"), occurred_at=_at(5))
    OrderFactory(customer=customer, amount=Decimal("999.00"), status="refunded", occurred_at=_at(1))
    OrderFactory(customer=customer, amount=Decimal("888.00"), status="cancelled", occurred_at=_at(9))
    other = CustomerFactory()
    OrderFactory(customer=other, amount=Decimal("1.00"), occurred_at=_at(3))

    assert customer_order_stats_refresh(customer_ids=[customer.pk]) == 1
    customer.refresh_from_db()
    assert customer.paid_orders == 2
    assert customer.paid_amount == Decimal("35.50")
    assert customer.first_order_at == _at(2)
    assert customer.last_order_at == _at(5)
    # Only the customers asked for are touched.
    other.refresh_from_db()
    assert other.paid_orders == 0


def test_order_stats_give_zeros_to_a_customer_without_orders():
    customer = CustomerFactory()
    Customer.objects.filter(pk=customer.pk).update(
        paid_orders=5, paid_amount=Decimal("50"), first_order_at=_at(1), last_order_at=_at(2)
    )
    refunded_only = CustomerFactory()
    OrderFactory(customer=refunded_only, status="refunded")

    assert customer_order_stats_refresh() == 2
    for c in Customer.objects.all():
        assert (c.paid_orders, c.paid_amount, c.first_order_at, c.last_order_at) == (0, Decimal("0"), None, None)


def test_order_stats_refresh_is_idempotent():
    customer = CustomerFactory()
    OrderFactory(customer=customer, amount=Decimal("10.00"))
    customer_order_stats_refresh()
    first = Customer.objects.values("paid_orders", "paid_amount").get()
    customer_order_stats_refresh()
    assert (
        Customer.objects.values("paid_orders", "paid_amount").get()
        == first
        == {"paid_orders": 1, "paid_amount": Decimal("10.00")}
    )


def _upsert(items):
    return customers_upsert_batch(batch=validate_batch({"items": items}, CustomerRow))


def test_upsert_replaces_tags():
    _upsert([{"external_id": "c1", "tags": ["vip", "new"]}, {"external_id": "c2", "tags": ["vip"]}])
    result = _upsert([{"external_id": "c1", "tags": ["churn-risk", "vip"]}])
    assert (result.created, result.updated, result.unchanged) == (0, 1, 0)
    assert sorted(CustomerTag.objects.filter(customer__external_id="c1").values_list("tag", flat=True)) == [
        "churn-risk",
        "vip",
    ]
    # Other customers' tags are not touched.
    assert list(CustomerTag.objects.filter(customer__external_id="c2").values_list("tag", flat=True)) == ["vip"]


def test_upsert_with_an_empty_tag_list_clears_tags_and_without_tags_keeps_them():
    _upsert([{"external_id": "c1", "tags": ["vip"]}, {"external_id": "c2", "tags": ["vip"]}])
    result = _upsert([{"external_id": "c1", "tags": []}, {"external_id": "c2", "name": "x"}])
    assert result.updated == 2
    assert list(CustomerTag.objects.values_list("customer__external_id", "tag")) == [("c2", "vip")]


def test_unsubscribe_writes_an_audit_entry(make_user):
    operator = make_user("operator")
    customer = CustomerFactory(consent_sms=True, consent_email=True)
    customer_unsubscribe(customer=customer, channel="sms", actor=operator)
    customer.refresh_from_db()
    assert customer.consent_sms is False and customer.consent_email is True
    entry = AuditEntry.objects.get()
    assert entry.action == "customer.unsubscribe"
    assert (entry.object_type, entry.object_id) == ("users.customer", str(customer.pk))
    assert entry.actor == operator and entry.actor_label == operator.username
    assert entry.changes == {"consent_sms": [True, False]}


def test_unsubscribe_all_records_every_channel_that_was_on():
    customer = CustomerFactory(consent_push=True, consent_sms=True, consent_email=False)
    customer_unsubscribe(customer=customer, channel="all")
    entry = AuditEntry.objects.get()
    assert entry.actor is None and entry.actor_label == "system"
    assert entry.changes == {"consent_push": [True, False], "consent_sms": [True, False]}
    assert not any(Customer.objects.get().consent().values())


def test_referrer_rejected_in_same_batch_rejects_the_referral(db):
    from core.batch import validate_batch
    from users.models import Customer
    from users.rows import CustomerRow
    from users.services import customers_upsert_batch

    payload = {
        "items": [
            {"external_id": "a1", "referred_by": "b1"},
            {"external_id": "b1", "referred_by": "nobody"},
            {"external_id": "c1", "referred_by": "a1"},
            {"external_id": "d1"},
        ]
    }
    result = customers_upsert_batch(batch=validate_batch(payload, CustomerRow))
    assert sorted(e.index for e in result.errors) == [0, 1, 2]
    assert "rejected" in next(e.message for e in result.errors if e.index == 0)
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["d1"]

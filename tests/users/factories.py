from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factory

from users.models import Customer, Event, Order


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"c{n:06d}")
    name = factory.Sequence(lambda n: f"Customer {n}")
    nickname = factory.Sequence(lambda n: f"nick{n}")
    phone = factory.Sequence(lambda n: f"138{n:08d}")
    email = factory.Sequence(lambda n: f"user{n}@example.com")
    city = "上海"
    signup_at = factory.LazyFunction(lambda: datetime(2026, 1, 1, tzinfo=UTC))
    consent_push = True
    consent_sms = True
    consent_email = True


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    external_id = factory.Sequence(lambda n: f"o{n:07d}")
    customer = factory.SubFactory(CustomerFactory)
    amount = Decimal("99.00")
    currency = "CNY"
    status = "paid"
    occurred_at = factory.Sequence(lambda n: datetime(2026, 3, 1, tzinfo=UTC) + timedelta(hours=n))


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    customer = factory.SubFactory(CustomerFactory)
    type = "login"
    occurred_at = factory.Sequence(lambda n: datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=n))
    properties = factory.LazyFunction(dict)
    dedupe_key = factory.Sequence(lambda n: f"test:{n}")

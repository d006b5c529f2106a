import importlib
from datetime import UTC, datetime

import factory
from django.apps import apps as django_apps

from incentives.models import Badge, EarningRule, IncentivePolicy, Level, Reward, RuleKind
from tests.users.factories import CustomerFactory, EventFactory, OrderFactory

__all__ = [
    "BadgeFactory",
    "CustomerFactory",
    "EarningRuleFactory",
    "EventFactory",
    "LevelFactory",
    "OrderFactory",
    "RewardFactory",
    "seed_defaults",
]


def seed_defaults() -> None:
    """Re-runs the data migration's seed (idempotent): transactional tests flush the
    seeded rules, levels and badges, so tests that rely on them call this first."""
    importlib.import_module("incentives.migrations.0002_default_rules").seed(django_apps, None)
    IncentivePolicy.objects.get_or_create(pk=1)


class EarningRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EarningRule
        django_get_or_create = ["code"]

    code = factory.Sequence(lambda n: f"rule-{n}")
    name = factory.LazyAttribute(lambda o: o.code)
    kind = RuleKind.CONTENT
    points = 10
    daily_cap = 0


class LevelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Level
        django_get_or_create = ["threshold"]

    name = factory.Sequence(lambda n: f"Level {n}")
    threshold = factory.Sequence(lambda n: (n + 1) * 100)


class BadgeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Badge
        django_get_or_create = ["code"]

    code = factory.Sequence(lambda n: f"badge-{n}")
    name = factory.LazyAttribute(lambda o: o.code)
    kind = "content_count"
    threshold = 3


class RewardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reward

    name = factory.Sequence(lambda n: f"Reward {n}")
    points_price = 100
    stock = 10
    valid_from = datetime(2020, 1, 1, tzinfo=UTC)
    valid_until = datetime(2100, 1, 1, tzinfo=UTC)

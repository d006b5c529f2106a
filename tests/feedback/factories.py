from datetime import UTC, datetime

import factory

from feedback.models import Category, RoadmapItem, Theme, Ticket


class TicketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Ticket

    category = Category.COMPLAINT
    subject = factory.Sequence(lambda n: f"Ticket {n}")
    body = factory.LazyAttribute(lambda o: o.subject)
    created_at = factory.LazyFunction(lambda: datetime(2026, 11, 20, 8, 0, tzinfo=UTC))
    updated_at = factory.LazyAttribute(lambda o: o.created_at)


class ThemeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Theme

    name = factory.Sequence(lambda n: f"Theme {n}")


class RoadmapItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RoadmapItem

    theme = factory.SubFactory(ThemeFactory, status=Theme.Status.CONFIRMED)
    title = factory.LazyAttribute(lambda o: o.theme.name)

"""Factories for the feedback tests. ``TicketFactory`` makes the row only (no customer,
no team unless given): tests that need the clock call
``feedback.services.clock.sla_targets_start`` themselves."""

from datetime import UTC, datetime

import factory
from django.contrib.auth import get_user_model

from feedback.defaults import WEEKDAY_HOURS
from feedback.models import BusinessCalendar, CalendarDate, Category, RoadmapItem, SlaPolicy, Team, Theme, Ticket
from tests.users.factories import CustomerFactory

__all__ = [
    "BusinessCalendarFactory",
    "CalendarDateFactory",
    "CustomerFactory",
    "RoadmapItemFactory",
    "SlaPolicyFactory",
    "TeamFactory",
    "ThemeFactory",
    "TicketFactory",
    "UserFactory",
]


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


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"staff{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@ops.example.com")


class BusinessCalendarFactory(factory.django.DjangoModelFactory):
    """Mon–Fri 09:00–12:00 and 13:00–18:00 in Shanghai with China's holidays, like the default."""

    class Meta:
        model = BusinessCalendar
        django_get_or_create = ["name"]

    name = factory.Sequence(lambda n: f"calendar {n}")
    timezone = "Asia/Shanghai"
    weekly_hours = factory.LazyFunction(lambda: {str(day): WEEKDAY_HOURS for day in range(1, 6)})
    workday_hours = factory.LazyFunction(lambda: list(WEEKDAY_HOURS))
    china_holidays = True


class CalendarDateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CalendarDate

    calendar = factory.SubFactory(BusinessCalendarFactory)
    kind = CalendarDate.Kind.HOLIDAY


class TeamFactory(factory.django.DjangoModelFactory):
    """Updates the team in place (the shipped defaults made product, tech, operations)."""

    class Meta:
        model = Team

    code = "tech"
    calendar = factory.SubFactory(BusinessCalendarFactory)
    lead = None

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        code = kwargs.pop("code")
        team, _created = model_class.objects.update_or_create(code=code, defaults=kwargs)
        return team


class SlaPolicyFactory(factory.django.DjangoModelFactory):
    """Updates the priority's policy in place (the shipped defaults made one per priority)."""

    class Meta:
        model = SlaPolicy

    priority = "normal"
    first_response_minutes = 8 * 60
    resolution_minutes = 40 * 60
    business_hours = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        priority = kwargs.pop("priority")
        policy, _created = model_class.objects.update_or_create(priority=priority, defaults=kwargs)
        return policy

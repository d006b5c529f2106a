"""Reads for customers. The profile's computed sections (segments, points…) are
composed above this app, in ``console.selectors``; a filter another app owns
(stage, tier, segment) reaches ``customer_list`` as an id subquery."""

import re
from datetime import datetime

from django.db.models import CharField, Func, Prefetch, Q, QuerySet
from django.db.models.lookups import Contains

from core.errors import NotFound

from .models import Customer, CustomerTag, Event, Order, OrderStatus


def customer_list(
    *,
    tag: str | None = None,
    updated_since: datetime | None = None,
    search: str | None = None,
    search_pii: bool = False,
    ids: QuerySet | None = None,
) -> QuerySet[Customer]:
    """``ids``: only customers whose id is in this subquery (``values("pk")`` or a flat
    ``values_list``), e.g. ``segments.selectors.customer_ids_in(...)`` passed down by the
    composition layer; it stays one SQL statement. ``search``: see ``customer_search_q``."""
    qs = (
        Customer.objects.select_related("referred_by")
        .only(
            *[f.name for f in Customer._meta.concrete_fields if f.name != "referred_by"],
            "referred_by__external_id",
        )
        .prefetch_related(Prefetch("tags", queryset=CustomerTag.objects.order_by("tag")))
    )
    if tag:
        qs = qs.filter(tags__tag=tag)
    if updated_since:
        qs = qs.filter(updated_at__gte=updated_since)
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    if search and search.strip():
        qs = qs.filter(customer_search_q(search, pii=search_pii))
    return qs


class Digits(Func):
    """The text with everything but its digits removed ("+86 136-7849 9498" → "8613678499498").
    On PostgreSQL it is the expression the trigram index customer_phone_digits_trgm holds."""

    output_field = CharField()
    _SEPARATORS = " -+().\t/"

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="regexp_replace((%(expressions)s)::text, '\\D', '', 'g')")

    def as_sql(self, compiler, connection, template=None, **extra):
        if template is None:  # elsewhere: the usual separators removed
            template = "%(expressions)s"
            for char in self._SEPARATORS:
                template = f"REPLACE({template}, '{char}', '')"
        return super().as_sql(compiler, connection, template=template, **extra)


def customer_search_q(term: str, *, pii: bool) -> Q:
    """What the operator search (and the customer admin's) matches: any part of the
    external id, name or nickname, in any case; with ``pii`` — for viewers allowed to
    see phone numbers and emails — any part of the email, and the phone by its digits
    (4 or more; spaces, dashes and a "+86" typed or stored do not matter). Without
    ``pii`` phone and email are not searched at all: a hit would tell who owns them.
    On PostgreSQL trigram indexes (users/migrations/0006) answer terms of 3 or more
    characters without reading the table."""
    term = term.strip()
    q = Q(external_id__icontains=term) | Q(name__icontains=term) | Q(nickname__icontains=term)
    if pii:
        q |= Q(email__icontains=term)
        digits = re.sub(r"\D", "", term)
        if len(digits) == 13 and digits.startswith("86"):
            digits = digits[2:]  # "+86 136 7849 9498": the number without the country code
        if len(digits) >= 4:
            q |= Q(Contains(Digits("phone"), digits))
    return q


def customer_get(*, external_id: str) -> Customer:
    customer = customer_list().filter(external_id=external_id).first()
    if customer is None:
        raise NotFound(f"No customer with external_id {external_id!r}.")
    return customer


def customer_ref(*, external_id: str) -> Customer:
    """Just the customer's identity and timezone, for write paths that need no profile."""
    customer = Customer.objects.only("id", "external_id", "timezone").filter(external_id=external_id).first()
    if customer is None:
        raise NotFound(f"No customer with external_id {external_id!r}.")
    return customer


def customer_refs(*, external_ids) -> dict[str, Customer]:
    """``customer_ref`` for many at once (one query); unknown ids are left out."""
    return {
        c.external_id: c
        for c in Customer.objects.only("id", "external_id", "timezone").filter(external_id__in=set(external_ids))
    }


def sql_tables() -> dict[str, str]:
    """The table names other apps' set-based SQL reads (the segments recompute): named
    here, from the models, so raw SQL elsewhere never spells users' tables itself.
    ``customer`` has ``id``, ``signup_at``, ``created_at``, ``updated_at``; ``order`` has
    ``customer_id``, ``status``, ``amount``, ``occurred_at``, ``updated_at``."""
    return {"customer": Customer._meta.db_table, "order": Order._meta.db_table}


def paid_order_sql(alias: str = "") -> str:
    """The SQL condition "this order row is paid" (over the ``order`` table of
    ``sql_tables``; ``alias`` qualifies the column)."""
    return f"{alias + '.' if alias else ''}status = '{OrderStatus.PAID.value}'"


def customers_with_events_since(*, since: datetime) -> list[int]:
    """Customers with an event that arrived at or after ``since``, whenever it happened
    (an index range on created_at: a late event, dated days back, counts when it lands)."""
    return list(Event.objects.filter(created_at__gte=since).values_list("customer_id", flat=True).distinct().order_by())


def customer_recent_orders(*, customer: Customer, limit: int = 50) -> QuerySet[Order]:
    return customer.orders.order_by("-occurred_at")[:limit]


def customer_recent_events(*, customer: Customer, limit: int = 100) -> QuerySet[Event]:
    return customer.events.order_by("-occurred_at")[:limit]

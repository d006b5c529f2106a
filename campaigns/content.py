"""What a delivery says: its given text, or its template rendered for the customer.

Rendering happens at hand-over, in the sender's batch, so the fan-out never renders a
million messages it may not send. A variable the template uses that is empty for this
customer (no level yet, no group) fails the delivery with the variable's name, rather
than sending "Dear , your  points…"; the campaign's preview counts those customers first.
"""

from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.utils import timezone

from communities import selectors as community_selectors
from communities.models import SopTemplateVersion
from users.models import Customer

# Variables whose values cost a query per customer; the rest come off the customer row.
_COSTLY = {"points", "level"}


class MissingVariable(Exception):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


@dataclass(frozen=True)
class Recipient:
    """What rendering needs of a customer, read with the delivery (no model instance)."""

    pk: int
    external_id: str
    nickname: str
    name: str
    timezone: str


def recipient_of(customer: Customer) -> Recipient:
    return Recipient(customer.pk, customer.external_id, customer.nickname, customer.name, customer.timezone)


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.OPS_DEFAULT_CUSTOMER_TIMEZONE)


def customer_context(customer: Recipient, version: SopTemplateVersion | None) -> dict:
    """The template variables for ``customer``: the cheap ones from the delivery's row,
    the costly ones (points, level) from their ledger only when the template uses them."""
    used = set(version.variables or []) if version is not None else set()
    if used & _COSTLY:
        return community_selectors.template_context(customer=Customer.objects.get(pk=customer.pk))
    context = dict.fromkeys(community_selectors.VARIABLES, "")
    context["points"] = 0
    context["nickname"] = customer.nickname or customer.name or customer.external_id
    context["today"] = timezone.now().astimezone(_zone(customer.timezone)).date().isoformat()
    return context


def render(
    *, customer: Recipient | Customer, version: SopTemplateVersion | None, content: str, subject: str, fields: dict
) -> Rendered:
    if version is None:
        return Rendered(subject=subject, body=content)
    if isinstance(customer, Customer):
        customer = recipient_of(customer)
    context = customer_context(customer, version)
    for name in version.variables or []:
        if context.get(name) in ("", None):
            raise MissingVariable(name)
    body = community_selectors.template_render(version, context=context, fields=fields, output=community_selectors.TEXT)
    return Rendered(subject=subject or version.template.name, body=body)

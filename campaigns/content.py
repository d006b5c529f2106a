"""What a delivery says: its given text, or its template rendered for the customer.

Rendering happens at hand-over, in the sender's batch, so the fan-out never renders a
million messages it may not send. A variable the template uses that is empty for this
customer (no level yet, no group) fails the delivery with the variable's name, rather
than sending "Dear , your  points…"; the campaign's preview counts those customers first.
"""

from dataclasses import dataclass

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


def customer_context(customer: Customer, version: SopTemplateVersion | None) -> dict:
    """The template variables for ``customer``: the cheap ones from the row, the costly
    ones (points, level) only when the template uses them."""
    used = set(version.variables or []) if version is not None else set()
    if used & _COSTLY:
        return community_selectors.template_context(customer=customer)
    context = community_selectors.template_context()
    context["nickname"] = customer.nickname or customer.name or customer.external_id
    return context


def render(
    *, customer: Customer, version: SopTemplateVersion | None, content: str, subject: str, fields: dict
) -> Rendered:
    if version is None:
        return Rendered(subject=subject, body=content)
    context = customer_context(customer, version)
    for name in version.variables or []:
        if context.get(name) in ("", None):
            raise MissingVariable(name)
    body = community_selectors.template_render(version, context=context, fields=fields, output=community_selectors.TEXT)
    return Rendered(subject=subject or version.template.name, body=body)

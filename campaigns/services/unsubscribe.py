"""One-click unsubscribe: a signed link per customer and channel that needs no login.

The token is ``django.core.signing`` over (customer id, channel) with its own salt: a
forged or altered token fails the signature, and using a good one again does the same
thing again (consent stays withdrawn), so the link works once or many times alike. The
change goes through ``users.services.customer_unsubscribe`` — the same write, audit row
and all, as ``POST /api/v1/customers/{id}/unsubscribe`` — and is remembered on the
contact state so a held-back send says "unsubscribed", not just "no consent".
"""

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from campaigns.services.policy import contact_states_lock
from core.errors import ApplicationError
from users.models import Customer
from users.services import customer_unsubscribe

SALT = "campaigns.unsubscribe"


def unsubscribe_token(*, customer_id: int, channel: str) -> str:
    return signing.dumps([customer_id, channel], salt=SALT, compress=False)


def unsubscribe_url(*, customer_id: int, channel: str) -> str:
    # The route is resolved once per process: the sender asks this for every message.
    if _prefix.get(settings.OPS_SITE_URL) is None:
        marker = "TOKEN"
        path = reverse("unsubscribe", kwargs={"token": marker})
        _prefix[settings.OPS_SITE_URL] = (settings.OPS_SITE_URL.rstrip("/") + path).rsplit(marker, 1)
    head, tail = _prefix[settings.OPS_SITE_URL]
    return head + unsubscribe_token(customer_id=customer_id, channel=channel) + tail


_prefix: dict[str, list[str]] = {}


def unsubscribe_read(*, token: str) -> tuple[Customer, str]:
    """The customer and channel a token names; ``invalid_unsubscribe_link`` when forged."""
    try:
        customer_id, channel = signing.loads(token, salt=SALT)
    except (signing.BadSignature, ValueError, TypeError):
        raise ApplicationError(_("This unsubscribe link is not valid."), code="invalid_unsubscribe_link") from None
    if channel not in [*settings.OPS_CHANNELS, "all"]:
        raise ApplicationError(_("This unsubscribe link is not valid."), code="invalid_unsubscribe_link")
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise ApplicationError(_("This unsubscribe link is not valid."), code="invalid_unsubscribe_link")
    return customer, channel


def contact_state_unsubscribed(*, customer_id: int, channels: list[str]) -> None:
    """Remembers on the contact state that these channels were withdrawn by unsubscribing
    (``users.hooks.customer_unsubscribed`` leads here, after the commit)."""
    with transaction.atomic():
        state = contact_states_lock(customer_ids=[customer_id]).get(customer_id)
        if state is None:  # the customer is gone
            return
        merged = sorted(set(state.unsubscribed) | set(channels))
        if merged != sorted(state.unsubscribed):
            state.unsubscribed = merged
            state.save(update_fields=["unsubscribed", "updated_at"])


def unsubscribe_by_link(*, token: str) -> tuple[Customer, str]:
    """The one-click link's write: the same service as the API's unsubscribe."""
    customer, channel = unsubscribe_read(token=token)
    customer_unsubscribe(customer=customer, channel=channel, actor=None)
    return customer, channel

"""Campaign words for the pages, in the operator's language: why a delivery was held
back or dropped (``Delivery.reason``) and a preview's or a count's outcome key
(``"deferred:cap"``). ``{{ delivery.reason|reason_label }}`` on any page — the customer
360's reach-outs too, which the composition layer renders."""

from django import template
from django.utils.translation import gettext_lazy

from ..models import DeliveryStatus

register = template.Library()

REASON_LABELS = {
    "cap": gettext_lazy("frequency cap"),
    "backoff": gettext_lazy("back-off"),
    "quiet_hours": gettext_lazy("quiet hours"),
    "no_consent": gettext_lazy("no consent"),
    "unsubscribed": gettext_lazy("unsubscribed"),
    "do_not_contact": gettext_lazy("do not contact"),
    "cancelled": gettext_lazy("campaign cancelled"),
}


@register.filter
def reason_label(reason: str) -> str:
    return str(REASON_LABELS.get(reason, reason)) if reason else ""


@register.filter
def outcome_label(key: str) -> str:
    """``"deferred:cap"`` → "deferred · frequency cap"."""
    status, _sep, reason = (key or "").partition(":")
    try:
        text = str(DeliveryStatus(status).label)
    except ValueError:
        text = status
    return f"{text} · {reason_label(reason)}" if reason else text

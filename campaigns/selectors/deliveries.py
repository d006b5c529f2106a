"""A customer's deliveries, and why each went or did not: the customer 360's answer to
"why didn't she get it"."""

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from campaigns.models import Delivery
from users.models import Customer


def customer_deliveries(*, customer: Customer, limit: int = 30) -> QuerySet[Delivery]:
    return (
        Delivery.objects.filter(customer=customer)
        .select_related("campaign", "variant")
        .order_by("-created_at", "-id")[:limit]
    )


def delivery_explain(delivery: Delivery) -> str:
    """One sentence, in the operator's language: what the policy decided and why."""
    rule = delivery.rule
    reason = delivery.reason
    if reason == "do_not_contact":
        return _("Not sent: the customer is marked do-not-contact.")
    if reason == "unsubscribed":
        return _("Not sent: the customer unsubscribed from this channel.")
    if reason == "no_consent":
        return _("Not sent: no marketing consent for this channel.")
    if reason == "cancelled":
        return _("Not sent: the campaign was cancelled first.")
    code = rule.split(":", 1)[1] if ":" in rule else rule
    if reason in ("cap", "backoff", "quiet_hours"):
        when = delivery.send_after
        if reason == "quiet_hours":
            text = _("Held by quiet hours in the customer's timezone")
        elif reason == "backoff":
            text = _("Held by back-off (three marketing sends in a row unanswered) on cap %(cap)s") % {"cap": code}
        else:
            text = _("Held by the frequency cap %(cap)s") % {"cap": code}
        if delivery.status == "deferred" and when:
            return _("%(text)s; deferred to %(when)s.") % {"text": text, "when": when.strftime("%Y-%m-%d %H:%M UTC")}
        if delivery.status == "suppressed":
            return _("%(text)s; suppressed (past the campaign's maximum delay, or it does not defer).") % {"text": text}
        return _("%(text)s; sent once allowed.") % {"text": text}
    if delivery.status == "failed":
        return _("Handed over but failed: %(error)s") % {"error": delivery.last_error or "—"}
    return _("Allowed by every rule.")

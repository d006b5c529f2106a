"""The contact policy as the database holds it: the admin-edited caps and knobs as
``rules.Policy``, and a customer's side of a decision — their consent and unsubscribes,
their marketing history, how many of their latest sends went unanswered."""

from datetime import datetime, timedelta

from django.conf import settings

from campaigns import rules
from campaigns.models import (
    COUNTED_STATUSES,
    HANDED_STATUSES,
    RESPONSE_FIELDS,
    CapRule,
    Category,
    ContactPolicy,
    ContactState,
    Delivery,
)
from users.models import Customer


def policy_settings() -> ContactPolicy:
    """The policy row (seeded by a migration; the defaults if it is gone)."""
    return ContactPolicy.objects.order_by("pk").first() or ContactPolicy(pk=1)


def cap_rules() -> tuple[rules.Cap, ...]:
    return tuple(
        rules.Cap(
            code=cap.code,
            channel=cap.channel or None,
            content_class=cap.content_class or None,
            windows=tuple(rules.Window(seconds=int(w["seconds"]), limit=int(w["limit"])) for w in cap.windows),
        )
        for cap in CapRule.objects.filter(is_active=True).order_by("code")
    )


def policy_load() -> rules.Policy:
    knobs = policy_settings()
    return rules.Policy(
        caps=cap_rules(),
        quiet_start=knobs.quiet_start,
        quiet_end=knobs.quiet_end,
        backoff_after=knobs.backoff_after,
        backoff_factor=float(knobs.backoff_factor),
        default_timezone=settings.OPS_DEFAULT_CUSTOMER_TIMEZONE,
    )


def longest_window(policy: rules.Policy) -> timedelta:
    seconds = max((w.seconds for cap in policy.caps for w in cap.windows), default=0)
    return timedelta(seconds=seconds)


def recipient_of(customer: Customer, state: ContactState | None, unanswered: dict[str, int]) -> rules.Recipient:
    consent = customer.consent()
    # "Unsubscribed" while the consent is still withdrawn; a customer who opted in again is not.
    unsubscribed = {channel for channel in (state.unsubscribed if state else []) if not consent.get(channel)}
    return rules.Recipient(
        consent=consent,
        do_not_contact=customer.do_not_contact,
        timezone=customer.timezone,
        unanswered=unanswered,
        unsubscribed=frozenset(unsubscribed),
    )


def unanswered_of(*, customer_id: int, channel: str, policy: rules.Policy) -> int:
    """How many of the customer's latest marketing sends on ``channel`` in a row (up to
    the back-off threshold) got no response."""
    latest = (
        Delivery.objects.filter(
            customer_id=customer_id, channel=channel, category=Category.MARKETING, status__in=HANDED_STATUSES
        )
        .order_by("-sent_at")
        .values_list(*RESPONSE_FIELDS)[: policy.backoff_after]
    )
    count = 0
    for responses in latest:
        if any(responses):
            break
        count += 1
    return count


def history_of(*, customer_id: int, since: datetime) -> list[rules.Planned]:
    """The customer's counted marketing deliveries from ``since`` on (future ones too)."""
    rows = Delivery.objects.filter(
        customer_id=customer_id,
        category=Category.MARKETING,
        planned_at__gt=since,
        status__in=COUNTED_STATUSES,
    ).values_list("planned_at", "channel", "content_class")
    return [rules.Planned(at=at, channel=channel, content_class=cls) for at, channel, cls in rows]

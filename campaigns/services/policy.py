"""The contact policy as the database holds it, and the one place a send is decided.

``policy_load`` turns the admin-edited caps and knobs into ``rules.Policy``;
``contact_states_lock`` takes the per-customer row locks (in id order, so two
writers locking overlapping sets never deadlock); ``send_decide`` reads one locked
customer's marketing history and asks ``rules.decide``. Callers hold the lock until
the delivery row is written, in the same transaction: that is what makes the caps
exact however many workers and API calls race for one customer.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

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
    """The policy row (created with the defaults on first use)."""
    policy = ContactPolicy.objects.order_by("pk").first()
    if policy is None:
        policy, _created = ContactPolicy.objects.get_or_create(pk=1)
    return policy


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


def contact_states_lock(*, customer_ids: Iterable[int]) -> dict[int, ContactState]:
    """Locks (and creates when missing) the contact state of each customer, in id order.
    Must run inside ``transaction.atomic``."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("contact_states_lock needs a transaction")
    ids = sorted(set(customer_ids))
    ContactState.objects.bulk_create(
        [ContactState(customer_id=pk) for pk in ids], ignore_conflicts=True, batch_size=1000
    )
    states = ContactState.objects.select_for_update().filter(customer_id__in=ids).order_by("customer_id")
    return {state.customer_id: state for state in states}


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


def send_decide(*, customer: Customer, state: ContactState, send: rules.Send, policy: rules.Policy) -> rules.Decision:
    """The decision for one send to a customer whose contact state the caller has locked."""
    history, unanswered = [], {}
    if send.category == rules.MARKETING:
        history = history_of(customer_id=customer.pk, since=send.due - longest_window(policy))
        unanswered = {send.channel: unanswered_of(customer_id=customer.pk, channel=send.channel, policy=policy)}
    recipient = recipient_of(customer, state, unanswered)
    return rules.decide(send=send, recipient=recipient, history=history, policy=policy)

"""The one place a send is decided.

``contact_states_lock`` takes the per-customer row locks (in id order, so two writers
locking overlapping sets never deadlock); ``send_decide`` reads one locked customer's
marketing history and asks ``rules.decide``. Callers hold the lock until the delivery
row is written, in the same transaction: that is what makes the caps exact however
many workers and API calls race for one customer.
"""

from collections.abc import Iterable

from django.db import transaction

from campaigns import rules
from campaigns.models import ContactState
from campaigns.selectors.policy import (  # noqa: F401  (the policy's reads, for the services' callers)
    cap_rules,
    history_of,
    longest_window,
    policy_load,
    policy_settings,
    recipient_of,
    unanswered_of,
)
from users.models import Customer


def contact_states_lock(*, customer_ids: Iterable[int], load: bool = True) -> dict[int, ContactState]:
    """Locks (and creates when missing) the contact state of each customer, in id order,
    until the transaction ends; answers the states (``load=False``: locks only, for a
    fan-out chunk of thousands, whose SQL reads the states itself). Must run inside
    ``transaction.atomic``."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("contact_states_lock needs a transaction")
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    table = ContactState._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"INSERT INTO {table} (customer_id, unsubscribed, updated_at) "
                f"SELECT unnest(%s::bigint[]), '[]'::jsonb, now() ON CONFLICT (customer_id) DO NOTHING",
                [ids],
            )
            cursor.execute(
                f"SELECT customer_id FROM {table} WHERE customer_id = ANY(%s::bigint[])"
                " ORDER BY customer_id FOR UPDATE",
                [ids],
            )
        else:  # SQLite: one writer at a time, the transaction is the lock
            ContactState.objects.bulk_create(
                [ContactState(customer_id=pk) for pk in ids], ignore_conflicts=True, batch_size=500
            )
    if not load:
        return {}
    return {state.customer_id: state for state in ContactState.objects.filter(customer_id__in=ids)}


def send_decide(*, customer: Customer, state: ContactState, send: rules.Send, policy: rules.Policy) -> rules.Decision:
    """The decision for one send to a customer whose contact state the caller has locked."""
    history, unanswered = [], {}
    if send.category == rules.MARKETING:
        history = history_of(customer_id=customer.pk, since=send.due - longest_window(policy))
        unanswered = {send.channel: unanswered_of(customer_id=customer.pk, channel=send.channel, policy=policy)}
    recipient = recipient_of(customer, state, unanswered)
    return rules.decide(send=send, recipient=recipient, history=history, policy=policy)

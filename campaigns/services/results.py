"""What happened after the hand-over: delivery callbacks and tracked links.

A result is stored once (``DeliveryEvent`` is unique per delivery, event and instant):
a replayed callback changes nothing and answers ``unchanged``. A delivery keeps the
first instant of each result and moves forward only — sent → delivered → opened →
clicked → responded — while ``failed`` is taken only from a delivery nobody saw yet.
An open, click or response ends the customer's back-off on that channel, since
back-off reads the latest sends' responses (``campaigns.services.policy``).
"""

from datetime import timedelta

from django.db import transaction
from django.utils.translation import gettext as _

from campaigns.models import Delivery, DeliveryEvent, DeliveryStatus
from campaigns.rows import CallbackRow
from core.batch import BatchResult, RowError, ValidatedBatch
from users.models import Order, OrderStatus

_PROGRESS = [
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.OPENED,
    DeliveryStatus.CLICKED,
    DeliveryStatus.RESPONDED,
]
_FIELD = {
    "delivered": "delivered_at",
    "opened": "opened_at",
    "clicked": "clicked_at",
    "responded": "responded_at",
}


def _apply(delivery: Delivery, event: str, at) -> None:
    if event == "failed":
        if delivery.status in (DeliveryStatus.SENT, DeliveryStatus.SENDING):
            delivery.status = DeliveryStatus.FAILED
            delivery.last_error = "reported failed by the gateway"
            delivery.planned_at = None  # it never reached them: the caps no longer count it
        return
    name = _FIELD[event]
    current = getattr(delivery, name)
    if current is None or at < current:
        setattr(delivery, name, at)
    if delivery.status in _PROGRESS and _PROGRESS.index(event) > _PROGRESS.index(delivery.status):
        delivery.status = event
    elif delivery.status == DeliveryStatus.FAILED and event != "delivered":
        # A gateway that said "failed" and then saw an open was wrong about the failure.
        delivery.status = event


def callbacks_record(*, batch: ValidatedBatch[CallbackRow]) -> BatchResult:
    """Stores each result once; an unknown delivery is an error for its item. Items
    for a delivery not handed over yet (still queued) are refused the same way."""
    rows = batch.rows
    ids = {row.delivery for _, row in rows}
    with transaction.atomic():
        deliveries = {d.pk: d for d in Delivery.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
        errors = []
        for index, row in rows:
            delivery = deliveries.get(row.delivery)
            if delivery is None:
                errors.append(RowError(index, "delivery", _("Unknown delivery %(id)s.") % {"id": row.delivery}))
            elif delivery.sent_at is None:
                errors.append(
                    RowError(index, "delivery", _("Delivery %(id)s has not been handed over.") % {"id": row.delivery})
                )
        batch.reject_many(errors)
        batch.raise_if_atomic_and_errors()
        result = BatchResult(errors=batch.errors)
        existing = set(
            DeliveryEvent.objects.filter(delivery_id__in=ids).values_list("delivery_id", "event", "at").order_by()
        )
        fresh, seen = [], set()
        for _index, row in batch.rows:
            item = (row.delivery, row.event, row.at)
            if item in existing or item in seen:
                result.unchanged += 1
                continue
            seen.add(item)
            fresh.append(DeliveryEvent(delivery_id=row.delivery, event=row.event, at=row.at))
            _apply(deliveries[row.delivery], row.event, row.at)
        DeliveryEvent.objects.bulk_create(fresh, ignore_conflicts=True)
        touched = [deliveries[pk] for pk in {e.delivery_id for e in fresh}]
        Delivery.objects.bulk_update(
            touched, ["status", "delivered_at", "opened_at", "clicked_at", "responded_at", "planned_at", "last_error"]
        )
        result.created = len(fresh)
    return result


def conversions_attribute(*, order_ids: list[int]) -> int:
    """Credits each paid order to the customer's last campaign delivery handed over
    before it, within that campaign's conversion window, not yet credited (last touch).
    Returns how many deliveries converted. A conversion is a response: it also ends the
    customer's back-off on that channel."""
    orders = list(
        Order.objects.filter(pk__in=order_ids, status=OrderStatus.PAID).order_by("occurred_at", "pk")
        .values_list("pk", "customer_id", "occurred_at", "amount")
    )  # fmt: skip
    if not orders:
        return 0
    customers = {customer_id for _pk, customer_id, _at, _amount in orders}
    latest = max(at for _pk, _c, at, _amount in orders)
    with transaction.atomic():
        candidates = list(
            Delivery.objects.select_for_update()
            .filter(customer_id__in=customers, campaign__isnull=False, sent_at__isnull=False,
                    sent_at__lte=latest, converted_at__isnull=True)
            .select_related("campaign")
            .order_by("customer_id", "-sent_at")
        )  # fmt: skip
        by_customer: dict[int, list[Delivery]] = {}
        for delivery in candidates:
            by_customer.setdefault(delivery.customer_id, []).append(delivery)
        credited = []
        for order_id, customer_id, at, amount in orders:
            for delivery in by_customer.get(customer_id, []):
                if delivery.converted_at is None and delivery.sent_at <= at <= delivery.sent_at + timedelta(
                    days=delivery.campaign.goal_days
                ):
                    delivery.converted_at, delivery.conversion_order_id, delivery.revenue = at, order_id, amount
                    credited.append(delivery)
                    break
        Delivery.objects.bulk_update(credited, ["converted_at", "conversion_order", "revenue"])
    return len(credited)

"""The points mall: redeeming a reward spends its price and takes one from stock in one
transaction; cancelling gives both back."""

from datetime import UTC, datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.errors import ApplicationError, Conflict
from core.services import audit_record
from users.models import Customer

from ..models import EntryKind, EntrySource, Redemption, Reward
from .ledger import accounts_lock, entry_build, lapsed_expire, request_hash, reversal_build


def reward_redeem(
    *, customer: Customer, reward_id: int, idempotency_key: str, now: datetime | None = None
) -> tuple[Redemption, bool]:
    """Spends the reward's price and takes one from stock in one transaction.

    Stock is taken with a conditional UPDATE (``stock > 0``), so concurrent
    redemptions never oversell; a failed spend rolls the stock back with it.

    A reused key replays the first redemption — unless it has been cancelled since:
    then the first answer ("redeemed") is no longer true and the current state is
    not a redemption, so the replay is refused with 409 ``redemption_cancelled``
    (details: the redemption, when it was cancelled, the balance now). A new
    redemption needs a new key."""
    now = now or timezone.now()
    with transaction.atomic():
        account = accounts_lock([customer.pk])[customer.pk]
        first = Redemption.objects.filter(customer=customer, idempotency_key=idempotency_key).first()
        if first is not None:
            if first.reward_id != reward_id:
                raise Conflict(
                    "This idempotency_key was already used for another reward.",
                    code="idempotency_key_reused",
                    details={"idempotency_key": idempotency_key},
                )
            if first.status == Redemption.Status.CANCELLED:
                raise Conflict(
                    "This idempotency_key's redemption was cancelled; redeem again with a new key.",
                    code="redemption_cancelled",
                    details={
                        "idempotency_key": idempotency_key,
                        "redemption": first.pk,
                        "cancelled_at": first.cancelled_at.astimezone(UTC).isoformat() if first.cancelled_at else None,
                        "balance": account.balance,
                    },
                )
            return first, True
        reward = Reward.objects.filter(pk=reward_id).first()
        if reward is None:
            raise ApplicationError(f"No reward with id {reward_id}.", code="not_found", status=404)
        if (
            not reward.is_active
            or (reward.valid_from and reward.valid_from > now)
            or (reward.valid_until and reward.valid_until <= now)
        ):
            raise Conflict("This reward is not available for redemption now.", code="reward_unavailable")
        if reward.stock is not None and not Reward.objects.filter(pk=reward.pk, stock__gt=0).update(
            stock=F("stock") - 1
        ):
            raise Conflict("This reward is out of stock.", code="out_of_stock")
        lapsed_expire(account, now=now)
        if account.balance < reward.points_price:
            raise Conflict(
                "Not enough points: the balance would go below zero.",
                code="insufficient_points",
                details={"balance": account.balance, "requested": reward.points_price},
            )
        entry = entry_build(
            account,
            now=now,
            kind=EntryKind.SPEND,
            amount=-reward.points_price,
            reason=f"redeemed: {reward.name}",
            source=EntrySource.REDEMPTION,
            source_ref=f"reward:{reward.pk}",
            idempotency_key=f"redeem:{idempotency_key}",
            request_hash=request_hash(reward=reward.pk),
        )
        entry.save()
        account.save(update_fields=["balance", "growth_value", "updated_at"])
        redemption = Redemption.objects.create(
            customer=customer,
            reward=reward,
            points=reward.points_price,
            idempotency_key=idempotency_key,
            spend_entry=entry,
            created_at=now,
        )
    return redemption, False


def redemption_cancel(*, redemption: Redemption, actor=None, now: datetime | None = None) -> Redemption:
    """Gives the points back and puts the item back in stock. Cancelling twice changes nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        account = accounts_lock([redemption.customer_id])[redemption.customer_id]
        redemption = Redemption.objects.select_for_update().get(pk=redemption.pk)
        if redemption.status == Redemption.Status.CANCELLED:
            return redemption
        reversal_build(
            account,
            redemption.spend_entry,
            reason="redemption cancelled",
            source=EntrySource.REDEMPTION,
            now=now,
            tz=redemption.customer.timezone,
        ).save()
        account.save(update_fields=["balance", "growth_value", "updated_at"])
        Reward.objects.filter(pk=redemption.reward_id, stock__isnull=False).update(stock=F("stock") + 1)
        redemption.status, redemption.cancelled_at = Redemption.Status.CANCELLED, now
        redemption.save(update_fields=["status", "cancelled_at"])
        if actor is not None:
            audit_record(actor=actor, action="redemption.cancel", obj=redemption)
    return redemption

"""REST API v1: points entries, a customer's points, rewards and redemptions."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from drf_spectacular.utils import extend_schema
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints
from rest_framework.response import Response
from rest_framework.views import APIView

from core.batch import RowError, validate_batch
from core.errors import Conflict, NotFound
from core.permissions import ScopePermission
from core.schema import error_responses
from core.validation import CleanTextModel, Flag, InputRow, validate_body
from users.rows import ExternalId
from users.selectors import customer_get, customer_ref, customer_refs

from . import selectors, services
from .models import EntrySource, PointsEntry, Redemption

IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class PointsEntryIn(InputRow):
    """Text free of NUL and unpaired surrogates, unknown fields refused (``core.validation``)."""

    customer: ExternalId
    kind: Literal["earn", "spend"]
    amount: Annotated[StrictInt, Field(gt=0, le=services.MAX_POINTS_PER_ENTRY)]
    reason: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    idempotency_key: IdempotencyKey


class PointsEntryBatchIn(BaseModel):
    items: Annotated[list[PointsEntryIn], Field(max_length=1000)]
    atomic: Flag = False


class RedeemIn(CleanTextModel):
    model_config = ConfigDict(extra="forbid")
    customer: ExternalId
    idempotency_key: IdempotencyKey


# --- response bodies (what the bot and app clients generate their types from) ---------


class _Out(BaseModel):
    # Exactly these keys: the schema says so (additionalProperties: false) and the API tests
    # validate real responses against these models.
    model_config = ConfigDict(extra="forbid")


class PointsEntryOut(_Out):
    id: int
    kind: Literal["earn", "spend", "expire", "adjust", "reverse"]
    amount: int = Field(description="Signed: negative for spends, expiries and reversals of earns.")
    balance_after: int
    reason: str
    source: Literal["rule", "order", "redemption", "operator", "api", "expiry"]
    idempotency_key: str
    created_at: datetime
    expires_at: datetime | None = Field(description="When these points lapse (UTC); null when they do not.")


class PointsPostedOut(_Out):
    customer: str = Field(description="The customer's external_id.")
    entry: PointsEntryOut
    balance_after: int


class PointsRowErrorOut(_Out):
    index: int = Field(description="Position of the item in the request.")
    field: str
    message: str
    code: str | None = Field(
        None, description="Present where a client acts on it: insufficient_points, idempotency_key_reused, not_found, …"
    )


class PointsBatchEntryOut(_Out):
    index: int = Field(description="Position of the item in the request.")
    customer: str
    replayed: bool = Field(description="The key was used before: this is the first entry written for it.")
    entry: PointsEntryOut


class PointsBatchOut(_Out):
    created: int
    updated: int = Field(description="Always 0: entries are never updated.")
    unchanged: int = Field(description="Replays of keys used before.")
    errors: list[PointsRowErrorOut]
    entries: list[PointsBatchEntryOut]


class NextLevelOut(_Out):
    name: str
    threshold: int


class CustomerLevelOut(_Out):
    name: str
    threshold: int
    benefits: str
    growth_value: int
    next: NextLevelOut | None = Field(description="The level above; null at the top.")
    downgrade_pending_since: datetime | None = Field(description="Set while below the level, within the grace period.")


class CustomerBadgeOut(_Out):
    code: str
    name: str
    awarded_at: datetime


class CustomerPointsOut(_Out):
    customer: str = Field(description="The customer's external_id.")
    balance: int = Field(description="Spendable now.")
    expiring_soon: int = Field(description="Points that lapse before expiring_before.")
    expiring_before: datetime
    growth_value: int
    level: CustomerLevelOut | None
    badges: list[CustomerBadgeOut]
    recent_entries: list[PointsEntryOut] = Field(description="The latest 20 entries, newest first.")


class RewardOut(_Out):
    id: int
    name: str
    description: str
    points_price: int
    stock: int | None = Field(description="Null: unlimited.")
    valid_until: datetime | None


class RewardListOut(_Out):
    results: list[RewardOut]


class RedemptionOut(_Out):
    id: int
    reward: int = Field(description="The reward's id.")
    points: int
    status: Literal["completed", "cancelled"]
    idempotency_key: str
    created_at: datetime
    cancelled_at: datetime | None


class RedeemedOut(_Out):
    customer: str = Field(description="The customer's external_id.")
    redemption: RedemptionOut
    balance_after: int


class RedemptionCancelledOut(_Out):
    redemption: RedemptionOut


def _client_key(key: str) -> str:
    # Client keys live in their own namespace, apart from the keys rules and jobs write.
    return f"api:{key}"


def _iso(at: datetime | None) -> str | None:
    # Always UTC: a fresh entry's expiry is built in the customer's zone, the stored one
    # comes back in UTC, and a replay must answer byte for byte what the first call did.
    return at.astimezone(UTC).isoformat() if at else None


def entry_out(entry: PointsEntry) -> dict:
    return {
        "id": entry.pk,
        "kind": entry.kind,
        "amount": entry.amount,
        "balance_after": entry.balance_after,
        "reason": entry.reason,
        "source": entry.source,
        "idempotency_key": entry.idempotency_key.removeprefix("api:"),
        "created_at": _iso(entry.created_at),
        "expires_at": _iso(entry.expires_at),
    }


def redemption_out(r: Redemption) -> dict:
    return {
        "id": r.pk,
        "reward": r.reward_id,
        "points": r.points,
        "status": r.status,
        "idempotency_key": r.idempotency_key,
        "created_at": _iso(r.created_at),
        "cancelled_at": _iso(r.cancelled_at),
    }


class PointsEntryApi(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"POST": "points:write"}
    required_perms = {"POST": "incentives.add_pointsentry"}

    @extend_schema(
        request=PointsEntryIn,
        responses={201: PointsPostedOut, **error_responses(400, 404, 409)},
        summary="Earn or spend points (idempotent)",
    )
    def post(self, request):
        body = validate_body(PointsEntryIn, request.data)
        customer = customer_ref(external_id=body.customer)
        try:
            posted = services.points_post(
                customer=customer,
                kind=body.kind,
                amount=body.amount,
                reason=body.reason,
                idempotency_key=_client_key(body.idempotency_key),
                source=EntrySource.API,
            )
        except Conflict as exc:
            if exc.code == "idempotency_key_reused":
                exc.details = {"idempotency_key": body.idempotency_key}  # the client's key, not our namespaced one
            raise
        headers = {"Idempotent-Replayed": "true"} if posted.replayed else {}
        return Response(
            {
                "customer": customer.external_id,
                "entry": entry_out(posted.entry),
                "balance_after": posted.entry.balance_after,
            },
            status=201,
            headers=headers,
        )


class PointsEntryBatchApi(APIView):
    """Many entries in one request, posted set-based in one transaction (see
    ``services.points_post_batch``): the way to move points in volume."""

    permission_classes = [ScopePermission]
    required_scopes = {"POST": "points:write"}
    required_perms = {"POST": "incentives.add_pointsentry"}

    @extend_schema(
        request=PointsEntryBatchIn,
        responses={200: PointsBatchOut, **error_responses(400, 422)},
        summary="Earn or spend points in a batch of up to 1,000 entries (each idempotent)",
    )
    def post(self, request):
        batch = validate_batch(request.data, PointsEntryIn, unique_field=None)
        known = customer_refs(external_ids=[row.customer for _, row in batch.rows])
        batch.reject_many(
            [
                RowError(i, "customer", f"Unknown customer {row.customer!r}.", "not_found")
                for i, row in batch.rows
                if row.customer not in known
            ]
        )
        batch.raise_if_atomic_and_errors()
        # With atomic, every item got this far, so positions in ``rows`` are request indexes.
        outcomes = services.points_post_batch(
            atomic=batch.atomic,
            requests=[
                services.EntryRequest(
                    customer_id=known[row.customer].pk,
                    timezone=known[row.customer].timezone,
                    kind=row.kind,
                    amount=row.amount,
                    reason=row.reason,
                    idempotency_key=_client_key(row.idempotency_key),
                )
                for _, row in batch.rows
            ],
        )
        indexes = [i for i, _ in batch.rows]
        errors = [*batch.errors, *services.outcome_errors(outcomes, indexes)]
        written = [(i, row, o) for (i, row), o in zip(batch.rows, outcomes, strict=True) if o.error is None]
        return Response(
            {
                "created": sum(not o.replayed for _, _, o in written),
                "updated": 0,
                "unchanged": sum(o.replayed for _, _, o in written),
                "errors": [e.as_dict() for e in sorted(errors, key=lambda e: e.index)],
                "entries": [
                    {"index": i, "customer": row.customer, "replayed": o.replayed, "entry": entry_out(o.entry)}
                    for i, row, o in written
                ],
            }
        )


class CustomerPointsApi(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"GET": "customers:read"}
    required_perms = {"GET": "incentives.view_pointsentry"}

    @extend_schema(
        responses={200: CustomerPointsOut, **error_responses(404)},
        summary="A customer's balance, level, badges, recent entries and expiring points",
    )
    def get(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        return Response(
            {
                "customer": customer.external_id,
                **selectors.points_summary(customer=customer),
                "level": selectors.customer_level(customer=customer),
                "badges": selectors.customer_badges(customer=customer),
                "recent_entries": [entry_out(e) for e in selectors.customer_entries(customer=customer, limit=20)],
            }
        )


class RewardListApi(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"GET": "customers:read"}
    required_perms = {"GET": "incentives.view_reward"}

    @extend_schema(
        responses={200: RewardListOut, **error_responses()}, summary="Rewards available in the points mall now"
    )
    def get(self, request):
        return Response(
            {
                "results": [
                    {
                        "id": r.pk,
                        "name": r.name,
                        "description": r.description,
                        "points_price": r.points_price,
                        "stock": r.stock,
                        "valid_until": r.valid_until.isoformat() if r.valid_until else None,
                    }
                    for r in selectors.reward_list(available_only=True)
                ]
            }
        )


class RewardRedeemApi(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"POST": "points:write"}
    required_perms = {"POST": "incentives.add_redemption"}

    @extend_schema(
        request=RedeemIn,
        responses={201: RedeemedOut, **error_responses(400, 404, 409)},
        summary="Redeem a reward (idempotent)",
        description=(
            "A reused `idempotency_key` replays the first answer (header `Idempotent-Replayed: true`); "
            "if that redemption has been cancelled since, the replay is 409 `redemption_cancelled` "
            "(details: `redemption`, `cancelled_at`, current `balance`) — use a new key to redeem again."
        ),
    )
    def post(self, request, reward_id: int):
        body = validate_body(RedeemIn, request.data)
        customer = customer_ref(external_id=body.customer)
        redemption, replayed = services.reward_redeem(
            customer=customer, reward_id=reward_id, idempotency_key=body.idempotency_key
        )
        headers = {"Idempotent-Replayed": "true"} if replayed else {}
        return Response(
            {
                "customer": customer.external_id,
                "redemption": redemption_out(redemption),
                "balance_after": redemption.spend_entry.balance_after,
            },
            status=201,
            headers=headers,
        )


class RedemptionCancelApi(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"POST": "points:write"}
    required_perms = {"POST": "incentives.change_redemption"}

    @extend_schema(
        request=None,
        responses={200: RedemptionCancelledOut, **error_responses(404)},
        summary="Cancel a redemption: points back, stock back",
    )
    def post(self, request, redemption_id: int):
        redemption = selectors.redemption_get(redemption_id=redemption_id)
        if redemption is None:
            raise NotFound(f"No redemption with id {redemption_id}.")
        redemption = services.redemption_cancel(redemption=redemption, actor=request.user)
        return Response({"redemption": redemption_out(redemption)})

"""The points ledger: locking accounts, posting entries (one or a batch), reversals,
expiry and the reconcile proof.

Every path that moves points runs in one transaction holding the accounts' row
locks, writes append-only entries and moves the cached balance with them.
Idempotency keys are unique per customer, so a replay finds the first entry and
answers it; a reused key with a different body is a 409.
"""

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.batch import RowError, batch_rejected
from core.errors import ApplicationError, Conflict
from core.services import audit_record
from core.sql import sql_datetime
from users.models import Customer

from .. import rules
from ..models import EntryKind, EntrySource, PointsAccount, PointsEntry
from ..selectors import policy_get

MAX_POINTS_PER_ENTRY = 10_000_000
_ACCOUNT = PointsAccount._meta.db_table
_ACCOUNT_COLUMNS = [f.column for f in PointsAccount._meta.concrete_fields]


def request_hash(**fields) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def accounts_lock(customer_ids: Iterable[int]) -> dict[int, PointsAccount]:
    """Row-locks the customers' accounts, creating the missing ones, for the rest of the
    transaction.

    On PostgreSQL this is one ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` over the ids
    in ascending order: it creates and locks in the same pass and the same order, so two
    batches never deadlock (locking the existing accounts first and inserting the missing
    ones after would hold one lock while waiting for another). The no-op update is what
    takes the lock and returns the current row; it costs a row version even for a
    request that ends as a replay or a refusal (a lock-only ``WHERE false`` variant would
    not return the row, and reading it back is another query). On SQLite the IMMEDIATE transaction
    already serialises writers; a read and an insert of the missing rows suffice."""
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(
                f"INSERT INTO {_ACCOUNT} (customer_id, balance, growth_value, updated_at) "
                f"SELECT id, 0, 0, %s FROM unnest(%s::bigint[]) AS ids(id) ORDER BY id "
                f"ON CONFLICT (customer_id) DO UPDATE SET updated_at = {_ACCOUNT}.updated_at "
                f"RETURNING {', '.join(_ACCOUNT_COLUMNS)}",
                [timezone.now(), ids],
            )
            return {row[0]: PointsAccount.from_db(connection.alias, _ACCOUNT_COLUMNS, row) for row in cur.fetchall()}
    accounts = {a.customer_id: a for a in PointsAccount.objects.filter(customer_id__in=ids)}
    if len(accounts) < len(ids):
        PointsAccount.objects.bulk_create(
            [PointsAccount(customer_id=i) for i in ids if i not in accounts], ignore_conflicts=True
        )
        accounts = {a.customer_id: a for a in PointsAccount.objects.filter(customer_id__in=ids)}
    return accounts


def accounts_save(accounts: Iterable[PointsAccount], *, now: datetime) -> None:
    """Writes the moved balances and growth values back: one ``UPDATE … FROM (VALUES …)``
    per thousand accounts (Django's ``bulk_update`` builds a CASE per row and costs
    more Python than the whole rest of a batch)."""
    rows = [(a.customer_id, a.balance, a.growth_value) for a in accounts]
    with connection.cursor() as cur:
        for start in range(0, len(rows), 1000):
            part = rows[start : start + 1000]
            cur.execute(
                f"UPDATE {_ACCOUNT} SET balance = v.column2, growth_value = v.column3, updated_at = %s "
                f"FROM (VALUES {', '.join(['(%s, %s, %s)'] * len(part))}) AS v "
                f"WHERE {_ACCOUNT}.customer_id = v.column1",
                [sql_datetime(now), *(value for row in part for value in row)],
            )


def _due(entries, at: datetime):
    """Per customer of ``entries``, the lapsed credits no debit has consumed (rules.py
    explains the formula), only where that is above zero. One GROUP BY."""
    return (
        entries.values("customer_id")
        .annotate(
            lapsed=Sum("amount", filter=Q(expires_at__lte=at), default=0),
            debits=Sum("amount", filter=Q(amount__lt=0, expires_at__isnull=True), default=0),
        )
        .annotate(due=F("lapsed") + F("debits"))
        .filter(due__gt=0)
    )


def due_to_expire(customer_ids: Iterable[int], at: datetime) -> dict[int, int]:
    """``{customer_id: points due to expire}`` for these customers (none due: left out).

    Only customers with a credit lapsed by ``at`` can owe anything (debits are never
    positive), so the sums run over those alone — found by a range probe of the
    (customer, expires_at) index; a customer whose points have not started lapsing
    costs no scan of their ledger."""
    ids = list(customer_ids)
    lapsing = PointsEntry.objects.filter(customer_id__in=ids, expires_at__lte=at).values("customer_id")
    return dict(_due(PointsEntry.objects.filter(customer_id__in=lapsing), at).values_list("customer_id", "due"))


def entry_build(account: PointsAccount, *, now: datetime, **fields) -> PointsEntry:
    """Builds an entry and moves the (locked) account with it; the caller saves both."""
    account.balance += fields["amount"]
    account.growth_value += fields.get("growth", 0)
    return PointsEntry(customer_id=account.customer_id, balance_after=account.balance, created_at=now, **fields)


def expiry_entry_build(account: PointsAccount, *, due: int, now: datetime) -> PointsEntry:
    return entry_build(
        account,
        now=now,
        kind=EntryKind.EXPIRE,
        amount=-due,
        reason="points expired",
        source=EntrySource.EXPIRY,
        idempotency_key=f"expire:{now.isoformat()}",
    )


def lapsed_expire(account: PointsAccount, *, now: datetime) -> PointsEntry | None:
    """Expires the account's lapsed points before a spend, so they cannot be spent."""
    due = due_to_expire([account.customer_id], now).get(account.customer_id, 0)
    if not due:
        return None
    entry = expiry_entry_build(account, due=due, now=now)
    entry.save()
    return entry


# --- Posting entries ------------------------------------------------------------------


@dataclass(frozen=True)
class EntryRequest:
    """One entry a caller asks for. ``amount`` is positive for earn and spend (a spend is
    taken off the balance) and signed for adjust."""

    customer_id: int
    timezone: str
    kind: str
    amount: int
    reason: str
    idempotency_key: str
    source: str = EntrySource.API
    source_ref: str = ""
    operator: Any = None
    external_id: str = ""  # the customer's, for the audit trail of an operator's adjustment

    @property
    def signed(self) -> int:
        return -self.amount if self.kind == EntryKind.SPEND else self.amount

    @property
    def fingerprint(self) -> str:
        # The stored reason is stripped; so is the one a replay is compared by.
        return request_hash(kind=self.kind, amount=self.amount, reason=self.reason.strip())


@dataclass
class EntryOutcome:
    """What became of one request: its entry (new, or the first one for a replayed key),
    or the error that kept it from being written."""

    entry: PointsEntry | None = None
    replayed: bool = False
    error: ApplicationError | None = None


@dataclass
class PostedEntry:
    entry: PointsEntry
    replayed: bool


def _request_error(r: EntryRequest) -> ApplicationError | None:
    """The checks that need no database (the API's pydantic models make the same ones)."""
    if r.kind not in (EntryKind.EARN, EntryKind.SPEND, EntryKind.ADJUST):
        return ApplicationError(f"kind must be earn, spend or adjust, not {r.kind!r}.", code="invalid_kind")
    if isinstance(r.amount, bool) or not isinstance(r.amount, int):
        return ApplicationError("amount must be a whole number of points.", code="invalid_amount")
    if (r.kind == EntryKind.ADJUST and r.amount == 0) or (r.kind != EntryKind.ADJUST and r.amount <= 0):
        return ApplicationError("amount must be a positive whole number of points.", code="invalid_amount")
    if abs(r.amount) > MAX_POINTS_PER_ENTRY:
        return ApplicationError(
            f"amount is above the largest single entry ({MAX_POINTS_PER_ENTRY}).", code="invalid_amount"
        )
    if not r.reason.strip():
        return ApplicationError("A reason is required.", code="reason_required")
    return None


def _key_reused(key: str) -> Conflict:
    return Conflict(
        "This idempotency_key was already used with a different request.",
        code="idempotency_key_reused",
        details={"idempotency_key": key},
    )


def _insufficient(balance: int, requested: int) -> Conflict:
    return Conflict(
        "Not enough points: the balance would go below zero.",
        code="insufficient_points",
        details={"balance": balance, "requested": requested},
    )


_ERROR_FIELDS = {
    "insufficient_points": "amount",
    "idempotency_key_reused": "idempotency_key",
    "invalid_kind": "kind",
    "invalid_amount": "amount",
    "reason_required": "reason",
}


def outcome_errors(outcomes: Sequence[EntryOutcome], indexes: Sequence[int] | None = None) -> list[RowError]:
    """The failed outcomes as batch row errors, indexed by position (or ``indexes[position]``)."""
    return [
        RowError(
            indexes[i] if indexes is not None else i,
            _ERROR_FIELDS.get(o.error.code, "item"),
            o.error.message,
            o.error.code,
        )
        for i, o in enumerate(outcomes)
        if o.error is not None
    ]


def points_post_batch(
    *, requests: Sequence[EntryRequest], atomic: bool = False, now: datetime | None = None
) -> list[EntryOutcome]:
    """Posts many entries in one transaction with a fixed number of queries, whatever
    their number: one lock of the accounts, one read of the keys already used, one read
    of the lapsed points of the customers who spend, one insert, one account update.

    Requests apply in order, so several for one customer see each other's effect (an
    earn then a spend of it succeeds). Each gets an outcome in the same position: a new
    entry, a replay of the first entry for its key, or an error that writes nothing for
    that request (a spend beyond the spendable balance, a key reused with another body,
    an invalid amount). With ``atomic`` any error rejects them all (422, nothing written;
    ``details.errors`` indexed by position). Lapsed points are expired just before a
    customer's first successful spend, so they cannot be spent."""
    now = now or timezone.now()
    outcomes = [EntryOutcome(error=_request_error(r)) for r in requests]
    todo = [i for i, o in enumerate(outcomes) if o.error is None]
    if atomic and len(todo) < len(requests):
        raise batch_rejected(outcome_errors(outcomes))
    if not todo:
        return outcomes
    expiry_months = policy_get().expiry_months
    customer_ids = {requests[i].customer_id for i in todo}
    with transaction.atomic():
        accounts = accounts_lock(customer_ids)
        seen = {
            (e.customer_id, e.idempotency_key): e
            for e in PointsEntry.objects.filter(
                customer_id__in=customer_ids, idempotency_key__in={requests[i].idempotency_key for i in todo}
            )
        }
        lapsed = due_to_expire({requests[i].customer_id for i in todo if requests[i].signed < 0}, now)
        new: list[PointsEntry] = []
        for i in todo:
            r = requests[i]
            first = seen.get((r.customer_id, r.idempotency_key))
            if first is not None:
                outcomes[i] = (
                    EntryOutcome(first, replayed=True)
                    if first.request_hash == r.fingerprint
                    else EntryOutcome(error=_key_reused(r.idempotency_key))
                )
                continue
            account = accounts[r.customer_id]
            if r.signed < 0:
                due = lapsed.get(r.customer_id, 0)
                if account.balance - due + r.signed < 0:
                    outcomes[i] = EntryOutcome(error=_insufficient(account.balance - due, r.amount))
                    continue
                if due:
                    new.append(expiry_entry_build(account, due=due, now=now))
                    lapsed[r.customer_id] = 0
            entry = entry_build(
                account,
                now=now,
                kind=r.kind,
                amount=r.signed,
                reason=r.reason.strip(),
                source=r.source,
                source_ref=r.source_ref,
                idempotency_key=r.idempotency_key,
                request_hash=r.fingerprint,
                operator=r.operator,
                expires_at=rules.expiry_for(now, months=expiry_months, tz=r.timezone) if r.signed > 0 else None,
            )
            new.append(entry)
            seen[(r.customer_id, r.idempotency_key)] = entry
            outcomes[i] = EntryOutcome(entry)
        if atomic and any(o.error for o in outcomes):
            raise batch_rejected(outcome_errors(outcomes))
        if not new:  # replays and refusals only: not even a newly created account stays
            transaction.set_rollback(True)
            return outcomes
        PointsEntry.objects.bulk_create(new, batch_size=1000)
        accounts_save((accounts[cid] for cid in {e.customer_id for e in new}), now=now)
        for r, o in zip(requests, outcomes, strict=True):
            if r.operator is not None and o.entry is not None and not o.replayed:  # an operator's adjustment
                audit_record(
                    actor=r.operator,
                    action=f"points.{o.entry.kind}",
                    obj=o.entry,
                    changes={
                        "customer": r.external_id or r.customer_id,
                        "amount": o.entry.amount,
                        "reason": o.entry.reason,
                    },
                )
    return outcomes


def points_post(
    *,
    customer: Customer,
    kind: str,
    amount: int,
    reason: str,
    idempotency_key: str,
    source: str = EntrySource.API,
    source_ref: str = "",
    operator=None,
    now: datetime | None = None,
) -> PostedEntry:
    """Earns (``amount`` > 0), spends (``amount`` > 0, taken off) or adjusts (signed) points:
    a batch of one that raises its error. A spend beyond the balance is a 409 and writes
    nothing; so is a negative adjustment beyond the balance."""
    (outcome,) = points_post_batch(
        requests=[
            EntryRequest(
                customer_id=customer.pk,
                timezone=customer.timezone,
                kind=kind,
                amount=amount,
                reason=reason or "",
                idempotency_key=idempotency_key,
                source=source,
                source_ref=source_ref,
                operator=operator,
                external_id=customer.external_id,
            )
        ],
        now=now,
    )
    if outcome.error is not None:
        raise outcome.error
    return PostedEntry(outcome.entry, replayed=outcome.replayed)


def reversal_build(
    account: PointsAccount, original: PointsEntry, *, reason: str, source: str, now: datetime, tz: str
) -> PointsEntry | None:
    """Builds the entry that undoes ``original`` (the caller saves it). Reversing a
    credit takes back at most what the balance holds (points already spent stay
    spent) and reduces that credit's lot, so it carries the lot's expiry."""
    if original.amount > 0:
        amount = -min(original.amount, account.balance)
        if amount == 0:
            return None
        expires_at = original.expires_at
    else:
        amount = -original.amount
        expires_at = rules.expiry_for(now, months=policy_get().expiry_months, tz=tz)
    return entry_build(
        account,
        now=now,
        kind=EntryKind.REVERSE,
        amount=amount,
        growth=-original.growth,
        reason=reason,
        source=source,
        source_ref=original.source_ref,
        reverses=original,
        idempotency_key=f"reverse:{original.pk}",
        expires_at=expires_at,
    )


# --- Expiry and the reconcile proof ------------------------------------------------------


def points_expire(*, now: datetime | None = None, chunk: int = 5000) -> int:
    """Writes an expire entry for every customer with lapsed, unconsumed points.

    The due amounts are computed in one GROUP BY over the ledger; accounts are
    locked and written a chunk at a time. Running it twice expires nothing twice.
    """
    now = now or timezone.now()
    due = list(_due(PointsEntry.objects.all(), now).order_by("customer_id").values_list("customer_id", flat=True))
    written = 0
    for start in range(0, len(due), chunk):
        part = due[start : start + chunk]
        with transaction.atomic():
            accounts = accounts_lock(part)
            # Recheck under the lock: a spend may have expired some of it meanwhile.
            fresh = due_to_expire(part, now)
            entries = [expiry_entry_build(accounts[cid], due=amount, now=now) for cid, amount in fresh.items()]
            PointsEntry.objects.bulk_create(entries, batch_size=1000)
            accounts_save((accounts[cid] for cid in fresh), now=now)
            written += len(entries)
    return written


def ledger_reconcile() -> list[dict]:
    """Every account whose cached balance differs from the sum of its entries (or
    whose latest entry's balance_after disagrees). Empty means no drift."""
    sums = (
        PointsEntry.objects.filter(customer_id=OuterRef("customer_id"))
        .order_by()
        .values("customer_id")
        .annotate(s=Sum("amount"))
        .values("s")
    )
    last = PointsEntry.objects.filter(customer_id=OuterRef("customer_id")).order_by("-id").values("balance_after")[:1]
    drift = (
        PointsAccount.objects.annotate(ledger=Coalesce(Subquery(sums), 0), last_after=Coalesce(Subquery(last), 0))
        .exclude(balance=F("ledger"), last_after=F("ledger"))
        .values("customer_id", "balance", "ledger", "last_after")
    )
    orphans = (
        PointsEntry.objects.exclude(customer_id__in=PointsAccount.objects.values("customer_id"))
        .values("customer_id")
        .annotate(ledger=Sum("amount"))
        .values("customer_id", "ledger")
    )
    return [*drift, *[{**o, "balance": None, "last_after": None} for o in orphans]]

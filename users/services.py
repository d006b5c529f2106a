"""Writes for customers, orders and events.

Batch upserts do a fixed number of queries per batch, whatever its size:
one read of the referenced customers, one read of the existing rows, one bulk
insert and one bulk update. Follow-up work (order roll-ups) is queued to the
worker on commit, never done in the request; what other apps do about new
orders and events (points) they subscribe to through ``users.hooks``.
"""

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, DecimalField, Max, Min, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from pydantic import ValidationError as PydanticValidationError

from core.batch import BatchResult, RowError, ValidatedBatch
from core.errors import ApplicationError
from core.pii import mask_email, mask_phone
from core.services import audit_diff, audit_record, audit_record_many, audit_value

from . import hooks
from .models import CONSENT_FIELDS, CUSTOMER_SCALAR_FIELDS, Customer, CustomerTag, Event, Order, OrderStatus
from .rows import CustomerRow, EventRow, OrderRow

_CUSTOMER_UPDATE_FIELDS = [*CUSTOMER_SCALAR_FIELDS, *CONSENT_FIELDS.values(), "updated_at"]
_ORDER_FIELDS = ["customer_id", "amount", "currency", "status", "occurred_at"]
_ORDER_INSERT_COLUMNS = ["external_id", *_ORDER_FIELDS, "created_at", "updated_at"]


def _customer_ids_by_external_id(external_ids: Iterable[str]) -> dict[str, int]:
    return dict(Customer.objects.filter(external_id__in=set(external_ids)).values_list("external_id", "id"))


def _reject_unknown_customers(batch: ValidatedBatch, known: dict[str, int], field: str = "customer") -> None:
    batch.reject_many(
        [
            RowError(i, field, f"Unknown customer {getattr(row, field)!r}: send it to /customers/batch first.")
            for i, row in batch.rows
            if getattr(row, field) not in known
        ]
    )


def _audited(field: str, value):
    """Audit rows hold no contact details: phone and email are stored masked."""
    if field == "phone":
        return mask_phone(value)
    if field == "email":
        return mask_email(value)
    return audit_value(value)


def _apply_customer_row(customer: Customer, row: CustomerRow, diff: dict | None = None) -> bool:
    """Copies the fields the row carries onto the customer; returns whether anything changed.
    With ``diff``, each changed field is recorded there as ``[from, to]`` (for the audit row)."""
    changed = False
    sent = row.model_fields_set
    for name in CUSTOMER_SCALAR_FIELDS:
        if name not in sent:
            continue
        value = getattr(row, name)
        if name == "timezone" and value is None:
            continue
        if name == "do_not_contact" and value is None:
            continue
        if getattr(customer, name) != value:
            if diff is not None:
                diff[name] = [_audited(name, getattr(customer, name)), _audited(name, value)]
            setattr(customer, name, value)
            changed = True
    if row.consent is not None:
        for channel, value in row.consent.model_dump(exclude_none=True).items():
            field = CONSENT_FIELDS[channel]
            if getattr(customer, field) != value:
                if diff is not None:
                    diff[field] = [getattr(customer, field), value]
                setattr(customer, field, value)
                changed = True
    return changed


def _reject_bad_referrers(batch: ValidatedBatch[CustomerRow]) -> set[str]:
    """Rejects rows that refer themself or name a referrer neither stored nor in the
    batch; returns every external id the batch names as a referrer."""
    referrers = {row.referred_by for _, row in batch.rows if row.referred_by}
    stored_referrers = set(_customer_ids_by_external_id(referrers))
    batch.reject_many(
        [
            RowError(i, "referred_by", "A customer cannot refer themself.")
            for i, row in batch.rows
            if row.referred_by == row.external_id
        ]
    )
    sent = {row.external_id for _, row in batch.rows}
    # Until nothing changes: a rejected row can no longer be the referrer of another.
    while True:
        in_batch = {row.external_id for _, row in batch.rows}
        unknown = [
            RowError(
                i,
                "referred_by",
                f"Unknown referrer {row.referred_by!r}."
                + (" Its row in this batch was rejected." if row.referred_by in sent else ""),
            )
            for i, row in batch.rows
            if row.referred_by and row.referred_by not in in_batch and row.referred_by not in stored_referrers
        ]
        if not unknown:
            return referrers
        batch.reject_many(unknown)


def _stored_customers(
    batch: ValidatedBatch[CustomerRow], *, audit: bool
) -> tuple[dict[str, Customer], dict[int, list[str]]]:
    """The batch's stored customers by external id and their tags by customer id (two queries)."""
    stored_qs = Customer.objects.filter(external_id__in=[r.external_id for _, r in batch.rows])
    if audit:  # the old referrer's external id for the audit row, in the same query
        stored_qs = stored_qs.select_related("referred_by")
    existing = {c.external_id: c for c in stored_qs}
    stored_tags: dict[int, list[str]] = {}
    for customer_id, tag in (
        CustomerTag.objects.filter(customer_id__in=[c.id for c in existing.values()])
        .order_by("tag")
        .values_list("customer_id", "tag")
    ):
        stored_tags.setdefault(customer_id, []).append(tag)
    return existing, stored_tags


def _write_customers(
    batch: ValidatedBatch[CustomerRow], existing: dict[str, Customer], *, now, diffs: dict[str, dict] | None
) -> tuple[set[str], set[str]]:
    """Inserts the new customers and updates the changed ones' fields (one query each);
    returns the external ids created and the external ids changed."""
    to_create, to_update, changed_ext = [], [], set()
    for _, row in batch.rows:
        customer = existing.get(row.external_id)
        diff = diffs.setdefault(row.external_id, {}) if diffs is not None else None
        if customer is None:
            customer = Customer(external_id=row.external_id, created_at=now, updated_at=now)
            _apply_customer_row(customer, row, diff)
            to_create.append(customer)
        elif _apply_customer_row(customer, row, diff):
            customer.updated_at = now
            to_update.append(customer)
            changed_ext.add(row.external_id)
    if to_create:
        Customer.objects.bulk_create(
            to_create,
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["external_id"],
            update_fields=_CUSTOMER_UPDATE_FIELDS,
        )
    if to_update:
        Customer.objects.bulk_update(to_update, _CUSTOMER_UPDATE_FIELDS, batch_size=500)
    return {c.external_id for c in to_create}, changed_ext


def _replace_tags(
    batch: ValidatedBatch[CustomerRow],
    ids: dict[str, int],
    existing: dict[str, Customer],
    stored_tags: dict[int, list[str]],
    *,
    changed_ext: set[str],
    now,
    diffs: dict[str, dict] | None,
) -> set[str]:
    """Replaces the tag set of the rows that sent one that differs; returns the external
    ids retagged. A stored customer changed only in its tags gets a new ``updated_at``."""
    tag_rows = [(ids[row.external_id], row.tags) for _, row in batch.rows if row.tags is not None]
    # Sorted in Python: the database's collation may order tags differently.
    retag = [(cid, tags) for cid, tags in tag_rows if sorted(stored_tags.get(cid, [])) != tags]
    if diffs is not None:
        ext_by_id = {cid: ext for ext, cid in ids.items()}
        for cid, tags in retag:
            diffs[ext_by_id[cid]]["tags"] = [sorted(stored_tags.get(cid, [])), tags]
    if not retag:
        return set()
    CustomerTag.objects.filter(customer_id__in=[cid for cid, _ in retag]).delete()
    CustomerTag.objects.bulk_create(
        [CustomerTag(customer_id=cid, tag=tag) for cid, tags in retag for tag in tags], batch_size=2000
    )
    retagged = {cid for cid, _ in retag}
    # A tag change is a change: move updated_at so updated_since readers see it.
    tag_only = [c.id for c in existing.values() if c.id in retagged and c.external_id not in changed_ext]
    if tag_only:
        Customer.objects.filter(id__in=tag_only).update(updated_at=now)
    return {ext for ext, cid in ids.items() if cid in retagged}


def _set_referrals(
    batch: ValidatedBatch[CustomerRow],
    ids: dict[str, int],
    existing: dict[str, Customer],
    *,
    now,
    diffs: dict[str, dict] | None,
) -> set[str]:
    """Sets ``referred_by`` for the rows that sent one that differs (after the inserts, so
    a referrer later in the batch has its id); returns the stored customers' external ids changed."""
    rerefer, changed_ext = [], set()
    for _, row in batch.rows:
        if "referred_by" not in row.model_fields_set:
            continue
        target = ids.get(row.referred_by) if row.referred_by else None
        stored = existing.get(row.external_id)
        if stored is not None and stored.referred_by_id == target:
            continue
        if diffs is not None:
            old = stored.referred_by.external_id if stored is not None and stored.referred_by_id else None
            diffs[row.external_id]["referred_by"] = [old, row.referred_by]
        rerefer.append(Customer(id=ids[row.external_id], referred_by_id=target, updated_at=now))
        if stored is not None:
            changed_ext.add(row.external_id)
    if rerefer:
        Customer.objects.bulk_update(rerefer, ["referred_by", "updated_at"], batch_size=1000)
    return changed_ext


def _audit_customers(*, actor, diffs: dict[str, dict], ids: dict[str, int], created: set[str]) -> None:
    """One audit row per created customer and per changed one, in one insert each."""
    audit_record_many(
        actor=actor,
        action="customer.create",
        items=[(Customer(pk=ids[ext]), diff) for ext, diff in diffs.items() if ext in created],
    )
    audit_record_many(
        actor=actor,
        action="customer.change",
        items=[(Customer(pk=ids[ext]), diff) for ext, diff in diffs.items() if ext not in created and diff],
    )


def customers_upsert_batch(*, batch: ValidatedBatch[CustomerRow], actor=None) -> BatchResult:
    """Upserts customers by ``external_id``. Fields a row leaves out keep their stored value.

    ``referred_by`` may name a customer already stored or one earlier or later in
    the same batch; an unknown one or the customer itself is a row error.

    With an ``actor`` (the admin, a file import: an operator's write), each created
    or changed customer gets an audit row ``{field: [from, to]}``, all in one insert.
    The product backend's API batches (a machine sync of thousands of rows) pass none.
    """
    audit = actor is not None
    referrers = _reject_bad_referrers(batch)
    batch.raise_if_atomic_and_errors()
    result = BatchResult(errors=batch.errors)
    if not batch.rows:
        return result

    with transaction.atomic():
        existing, stored_tags = _stored_customers(batch, audit=audit)
        diffs: dict[str, dict] | None = {} if audit else None
        now = timezone.now()
        created_ext, changed_ext = _write_customers(batch, existing, now=now, diffs=diffs)
        ids = _customer_ids_by_external_id({row.external_id for _, row in batch.rows} | referrers)
        changed_ext |= _replace_tags(batch, ids, existing, stored_tags, changed_ext=changed_ext, now=now, diffs=diffs)
        changed_ext |= _set_referrals(batch, ids, existing, now=now, diffs=diffs)
        if diffs is not None:
            _audit_customers(actor=actor, diffs=diffs, ids=ids, created=created_ext)

    result.created = len(created_ext)
    result.updated = len(changed_ext - created_ext)
    result.unchanged = len(batch.rows) - result.created - result.updated
    return result


_ORDER_MOVED_MESSAGE = (
    "An order cannot move to another customer; refund it and send a new order for the other customer."
)


def orders_upsert_batch(*, batch: ValidatedBatch[OrderRow], actor=None) -> BatchResult:
    """Upserts orders by ``external_id``; a changed status (paid → refunded) is an update.

    Every path that writes orders (the API, the admin, a file import) comes here, so
    the customers' roll-ups and the purchase points always follow, on commit. With an
    ``actor`` (operator writes), each created or changed order gets an audit row
    ``{field: [from, to]}``; the product backend's API batches pass none."""
    customer_ids = _customer_ids_by_external_id(row.customer for _, row in batch.rows)
    _reject_unknown_customers(batch, customer_ids)
    batch.raise_if_atomic_and_errors()
    result = BatchResult(errors=batch.errors)
    if not batch.rows:
        return result

    with transaction.atomic():
        existing = {
            o.external_id: o
            for o in Order.objects.filter(external_id__in=[r.external_id for _, r in batch.rows]).only(
                "id", "external_id", *_ORDER_FIELDS
            )
        }
        # An order belongs to one customer for good: moving it would leave its purchase
        # points with the first customer and pay them again to the second.
        batch.reject_many(
            [
                RowError(i, "customer", _ORDER_MOVED_MESSAGE)
                for i, row in batch.rows
                if row.external_id in existing and existing[row.external_id].customer_id != customer_ids[row.customer]
            ]
        )
        batch.raise_if_atomic_and_errors()  # nothing is written yet: the transaction rolls back
        now = timezone.now()
        to_create, to_update, touched_customers = [], [], set()
        diffs: dict[str, dict] = {}
        for _, row in batch.rows:
            customer_id = customer_ids[row.customer]
            order = existing.get(row.external_id)
            if order is None:
                # Plain tuples, in _ORDER_INSERT_COLUMNS order: a model instance per row costs more than the insert.
                to_create.append(
                    (row.external_id, customer_id, row.amount, row.currency, row.status, row.occurred_at, now, now)
                )
                touched_customers.add(customer_id)
                if actor is not None:
                    diffs[row.external_id] = audit_diff(None, {"customer": row.customer, **_order_values(row)})
                continue
            values = {
                "customer_id": customer_id,
                "amount": row.amount,
                "currency": row.currency,
                "status": row.status,
                "occurred_at": row.occurred_at,
            }
            if any(getattr(order, k) != v for k, v in values.items()):
                touched_customers.update({order.customer_id, customer_id})
                if actor is not None:
                    before = {
                        "customer_id": order.customer_id,
                        **{k: getattr(order, k) for k in values if k != "customer_id"},
                    }
                    diffs[row.external_id] = audit_diff(before, values)
                for k, v in values.items():
                    setattr(order, k, v)
                order.updated_at = now
                to_update.append(order)
        created_ids = _orders_insert(to_create) if to_create else []
        if to_update:
            Order.objects.bulk_update(to_update, [*_ORDER_FIELDS, "updated_at"], batch_size=500)
        if touched_customers:
            order_ids = created_ids + [o.pk for o in to_update]
            _after_orders_changed(customer_ids=sorted(touched_customers), order_ids=sorted(order_ids))
        if diffs:
            _orders_audit(
                actor=actor,
                diffs=diffs,
                created={r[0] for r in to_create},
                customer_ids=customer_ids,
                updated=to_update,
            )

    result.created, result.updated = len(to_create), len(to_update)
    result.unchanged = len(batch.rows) - result.created - result.updated
    return result


def _order_values(row: OrderRow) -> dict:
    return {"amount": row.amount, "currency": row.currency, "status": row.status, "occurred_at": row.occurred_at}


def _orders_audit(
    *, actor, diffs: dict[str, dict], created: set[str], customer_ids: dict[str, int], updated: list[Order]
) -> None:
    """The orders' audit rows, one insert; customers are named by external id, not row id."""
    ext_by_id = {cid: ext for ext, cid in customer_ids.items()}
    new_ids = dict(Order.objects.filter(external_id__in=created).values_list("external_id", "id")) if created else {}
    ids = {**new_ids, **{o.external_id: o.pk for o in updated}}
    for diff in diffs.values():
        if "customer_id" in diff:
            diff["customer"] = [ext_by_id.get(v, v) for v in diff.pop("customer_id")]
    audit_record_many(
        actor=actor,
        action="order.create",
        items=[(Order(pk=ids[ext]), diff) for ext, diff in diffs.items() if ext in created],
    )
    audit_record_many(
        actor=actor,
        action="order.change",
        items=[(Order(pk=ids[ext]), diff) for ext, diff in diffs.items() if ext not in created],
    )


def order_update(*, order: Order, actor=None, **changes) -> Order:
    """One order's edit by an operator (status, amount, currency, time, customer): the same
    write as an API batch of one row, so the roll-ups and the purchase points (paid, or
    reversed on a refund) follow on commit, and the audit row says from → to."""
    unknown = sorted(set(changes) - {"customer", "amount", "currency", "status", "occurred_at"})
    if unknown:
        raise ApplicationError(f"Not editable on an order: {', '.join(unknown)}.", code="invalid")
    customer = changes.pop("customer", None) or order.customer
    data = {
        "external_id": order.external_id,
        "customer": customer.external_id,
        "amount": order.amount,
        "currency": order.currency,
        "status": order.status,
        "occurred_at": order.occurred_at,
        **changes,
    }
    try:
        row = OrderRow.model_validate(data)
    except PydanticValidationError as exc:
        raise ApplicationError(
            "The order is not valid.",
            code="invalid",
            details={"errors": exc.errors(include_url=False, include_context=False)},
        ) from None
    batch = ValidatedBatch(rows=[(0, row)], errors=[], atomic=True)
    orders_upsert_batch(batch=batch, actor=actor)
    order.refresh_from_db()
    return order


def _orders_insert(rows: list[tuple]) -> list[int]:
    """Inserts new orders (tuples in ``_ORDER_INSERT_COLUMNS`` order) and returns their ids.

    Upserts on ``external_id`` — a concurrent request inserting the same order
    wins or loses cleanly. On PostgreSQL this is one ``INSERT … SELECT FROM
    unnest(arrays) ON CONFLICT … RETURNING id`` with eight array parameters:
    the same statement ``bulk_create(update_conflicts=True)`` sends, without
    building and compiling a model instance per row, which was most of the
    time of an order batch request (bench/ingest.py).
    """
    if connection.vendor != "postgresql":
        orders = [Order(**dict(zip(_ORDER_INSERT_COLUMNS, row, strict=True))) for row in rows]
        Order.objects.bulk_create(
            orders,
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["external_id"],
            update_fields=[*_ORDER_FIELDS, "updated_at"],
        )
        if all(o.pk for o in orders):
            return [o.pk for o in orders]
        return list(Order.objects.filter(external_id__in=[r[0] for r in rows]).values_list("id", flat=True))

    quote = connection.ops.quote_name
    fields = [Order._meta.get_field(name) for name in _ORDER_INSERT_COLUMNS]
    columns = [quote(f.column) for f in fields]
    # Arrays of the base types (varchar, not varchar(64)): an explicit length cast would truncate
    # silently, while the assignment to the column refuses a too-long value as a plain INSERT does.
    arrays = ", ".join(f"%s::{re.sub(r'[(].*[)]', '', f.cast_db_type(connection))}[]" for f in fields)
    updates = ", ".join(
        f"{quote(Order._meta.get_field(name).column)} = EXCLUDED.{quote(Order._meta.get_field(name).column)}"
        for name in [*_ORDER_FIELDS, "updated_at"]
    )
    sql = (
        f"INSERT INTO {quote(Order._meta.db_table)} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) "
        f"ON CONFLICT ({quote(Order._meta.get_field('external_id').column)}) DO UPDATE SET {updates} "
        f"RETURNING {quote(Order._meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_pg_array_literal(column) for column in zip(*rows, strict=True)])
        return [r[0] for r in cursor.fetchall()]


def _pg_array_literal(values: Sequence) -> str:
    """``{"a","b"}``: one text parameter per column, which PostgreSQL parses into an array.

    psycopg2 adapts a Python list element by element; one string per column,
    escaped in one pass over the joined text, is an order of magnitude cheaper.
    """
    if None in values:
        return "{" + ",".join("NULL" if v is None else _pg_array_literal([v])[1:-1] for v in values) + "}"
    joined = "\x00".join(map(str, values))  # no text PostgreSQL stores contains NUL
    joined = joined.replace("\\", "\\\\").replace('"', '\\"')
    return '{"' + joined.replace("\x00", '","') + '"}'


def _after_orders_changed(*, customer_ids: list[int], order_ids: list[int]) -> None:
    """On commit the worker refreshes the roll-ups; the ``orders_changed`` subscribers
    (incentives pays or reverses purchase points) queue their own work on commit."""
    from .tasks import customer_order_stats_refresh_task  # tasks imports this module

    customer_order_stats_refresh_task.delay_on_commit(customer_ids)
    hooks.orders_changed.publish(customer_ids=customer_ids, order_ids=order_ids)


def event_dedupe_key(*, customer_id: int, row: EventRow) -> str:
    if row.external_id:
        return f"x:{row.external_id}"
    content = json.dumps(
        # In UTC: the same instant sent with another offset is the same event.
        [customer_id, row.type, row.occurred_at.astimezone(UTC).isoformat(), row.properties],
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return "h:" + hashlib.sha256(content.encode()).hexdigest()[:64]


def events_append_batch(*, batch: ValidatedBatch[EventRow], actor=None) -> BatchResult:
    """Appends events. An event with an ``external_id`` already stored is left as it is;
    one without is deduplicated by its content (customer, type, time, properties).
    With an ``actor`` (an operator adding events in the admin) each new event gets an
    audit row; the product backend's API batches pass none."""
    customer_ids = _customer_ids_by_external_id(row.customer for _, row in batch.rows)
    _reject_unknown_customers(batch, customer_ids)
    batch.raise_if_atomic_and_errors()
    result = BatchResult(errors=batch.errors)
    if not batch.rows:
        return result

    keyed = {}
    for _, row in batch.rows:
        cid = customer_ids[row.customer]
        keyed.setdefault(event_dedupe_key(customer_id=cid, row=row), (cid, row))
    with transaction.atomic():
        stored = set(Event.objects.filter(dedupe_key__in=list(keyed)).values_list("dedupe_key", flat=True))
        new = [
            Event(
                customer_id=cid,
                type=row.type,
                occurred_at=row.occurred_at,
                properties=row.properties,
                external_id=row.external_id,
                dedupe_key=key,
            )
            for key, (cid, row) in keyed.items()
            if key not in stored
        ]
        Event.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
        _after_events_appended(new)
        if actor is not None and new:
            ids = dict(Event.objects.filter(dedupe_key__in=[e.dedupe_key for e in new]).values_list("dedupe_key", "id"))
            audit_record_many(
                actor=actor,
                action="event.create",
                items=[
                    (
                        Event(pk=ids[e.dedupe_key]),
                        {"type": [None, e.type], "customer": [None, keyed[e.dedupe_key][1].customer]},
                    )
                    for e in new
                ],
            )
    result.created = len(new)
    result.unchanged = len(batch.rows) - result.created
    return result


def _after_events_appended(events: list[Event]) -> None:
    """Tells the ``events_appended`` subscribers (incentives pays the earning rules the
    events trigger) which events are new, by type. The bulk insert returns no ids, so
    they are read back: one query, and none when no event is new or nobody listens."""
    if not events or not hooks.events_appended.subscribers:
        return
    by_type: dict[str, list[int]] = {}
    for event_type, event_id in (
        Event.objects.filter(dedupe_key__in=[e.dedupe_key for e in events]).values_list("type", "id").order_by("id")
    ):
        by_type.setdefault(event_type, []).append(event_id)
    hooks.events_appended.publish(event_ids_by_type=by_type)


def customer_unsubscribe(*, customer: Customer, channel: str, actor=None) -> Customer:
    """Withdraws marketing consent for one channel, or for every channel with ``"all"``."""
    fields = list(CONSENT_FIELDS.values()) if channel == "all" else [CONSENT_FIELDS[channel]]
    before = {f: getattr(customer, f) for f in fields}
    with transaction.atomic():
        for field in fields:
            setattr(customer, field, False)
        customer.save(update_fields=[*fields, "updated_at"])
        audit_record(
            actor=actor,
            action="customer.unsubscribe",
            obj=customer,
            changes={f: [before[f], False] for f in fields if before[f]},
        )
        channels = list(CONSENT_FIELDS) if channel == "all" else [channel]
        hooks.customer_unsubscribed.publish(customer_id=customer.pk, channels=channels)
    return customer


def customer_tags_set(*, customer: Customer, tags: list[str], actor=None) -> Customer:
    """Replaces a customer's tags (the admin's tag inline): the API's write, audited from → to."""
    row = CustomerRow(external_id=customer.external_id, tags=sorted({t.strip() for t in tags if t.strip()}))
    customers_upsert_batch(batch=ValidatedBatch(rows=[(0, row)], errors=[], atomic=True), actor=actor)
    return customer


def customer_order_stats_refresh(*, customer_ids: list[int] | None = None) -> int:
    """Recomputes each customer's paid-order roll-up in one set-based UPDATE."""
    paid = Order.objects.filter(customer=OuterRef("pk"), status=OrderStatus.PAID).order_by().values("customer")
    money = DecimalField(max_digits=14, decimal_places=2)
    targets = Customer.objects.all() if customer_ids is None else Customer.objects.filter(pk__in=customer_ids)
    return targets.update(
        paid_orders=Coalesce(Subquery(paid.annotate(n=Count("id")).values("n")), 0),
        paid_amount=Coalesce(
            Subquery(paid.annotate(s=Sum("amount")).values("s")), Value(Decimal("0")), output_field=money
        ),
        first_order_at=Subquery(paid.annotate(t=Min("occurred_at")).values("t")),
        last_order_at=Subquery(paid.annotate(t=Max("occurred_at")).values("t")),
    )

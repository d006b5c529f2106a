"""The outbox: senders claim due deliveries, hand them to the channel's backend and
record the outcome.

- **Claim** in batches with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL): any number of
  senders drain one outbox without waiting for each other or taking a row twice. The
  claim sets ``sending`` and counts an attempt, and commits before anything is sent.
- **Hand over** each claimed delivery with its idempotency key (the delivery's
  ``key``), so a gateway that deduplicates sees each message once.
- **Record** the outcomes of the batch in one ``UPDATE … FROM (VALUES …)``: sent,
  retry later (exponential back-off, or the gateway's ``Retry-After``) or failed.
- **Recover**: a claim older than ``OPS_OUTBOX_LEASE_SECONDS`` belongs to a worker that
  died; the sweep puts it back in the queue and counts it in ``recovered``. That is the
  only way a delivery is handed over twice, and then under the same key.
"""

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from campaigns import backends, content
from campaigns.backends import rate
from campaigns.models import Campaign, Category, Delivery, DeliveryStatus, Variant
from campaigns.services import tracking
from campaigns.services.unsubscribe import unsubscribe_url
from communities.models import SopTemplateVersion
from users.models import Customer

log = logging.getLogger("campaigns.outbox")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:80]


def outbox_claim(*, limit: int | None = None, now: datetime | None = None, worker: str | None = None) -> list:
    """Claims up to ``limit`` due deliveries (queued, or deferred until now) for this
    worker and answers them as the sender reads them (``_Row``, with their customers'
    columns, in the same statement). Commits on return."""
    limit = limit or settings.OPS_OUTBOX_BATCH
    now = now or timezone.now()
    table, campaigns = Delivery._meta.db_table, Campaign._meta.db_table
    lock = "FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    # A paused (or cancelled) campaign's deliveries wait where they are. PostgreSQL
    # answers the rows with their customers' columns in the claim itself; SQLite's
    # RETURNING sees only the updated table, so it reads them after.
    postgres = connection.vendor == "postgresql"
    joined = f"FROM {Customer._meta.db_table} cu WHERE cu.id = {table}.customer_id AND" if postgres else "WHERE"
    returning = ", ".join(c if "." in c else f"{table}.{c}" for c in _CLAIMED) if postgres else "id"
    sql = f"""
        UPDATE {table} SET status = %s, claimed_at = %s, claimed_by = %s, attempts = attempts + 1
        {joined} {table}.id IN (
            SELECT id FROM {table}
            WHERE status IN (%s, %s) AND send_after <= %s
              AND (campaign_id IS NULL OR campaign_id NOT IN (
                    SELECT id FROM {campaigns} WHERE status IN ('paused', 'cancelled', 'draft')))
            ORDER BY send_after, id
            LIMIT %s {lock}
        )
        RETURNING {returning}
    """
    params = [DeliveryStatus.SENDING, now, worker or worker_name(), DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [*params, now, limit])
        claimed = cursor.fetchall()
        if not postgres:
            return _rows([values[0] for values in claimed])
        return sorted((_row(values) for values in claimed), key=lambda row: row.pk)


@dataclass
class HandoverCounts:
    sent: int = 0
    retry: int = 0
    failed: int = 0
    by_error: dict[str, int] = field(default_factory=dict)

    def add(self, other: "HandoverCounts") -> None:
        self.sent += other.sent
        self.retry += other.retry
        self.failed += other.failed
        for key, value in other.by_error.items():
            self.by_error[key] = self.by_error.get(key, 0) + value


def retry_delay(attempts: int, retry_after: float | None = None) -> timedelta:
    """30 s, 1 min, 2 min… (at most an hour), or what the gateway asked for."""
    if retry_after is not None and retry_after > 0:
        return timedelta(seconds=min(retry_after, 3600))
    return timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class _Row:
    """A claimed delivery as the sender reads it: its columns and its customer's, no models."""

    pk: int
    key: str
    channel: str
    category: str
    content: str
    subject: str
    attempts: int
    template_version_id: int | None
    variant_id: int | None
    customer: content.Recipient
    phone: str
    email: str


_COLUMNS = (
    "pk", "key", "channel", "category", "content", "subject", "attempts", "template_version_id", "variant_id",
    "customer_id", "customer__external_id", "customer__nickname", "customer__name", "customer__timezone",
    "customer__phone", "customer__email",
)  # fmt: skip


# The claim's RETURNING list, in _Row's order.
_CLAIMED = (
    "id", "key", "channel", "category", "content", "subject", "attempts", "template_version_id", "variant_id",
    "customer_id", "cu.external_id", "cu.nickname", "cu.name", "cu.timezone", "cu.phone", "cu.email",
)  # fmt: skip


def _row(values) -> "_Row":
    pk, key, ch, cat, text, subj, att, tv, var, cid, ext, nick, name, tz, phone, email = values
    return _Row(pk, key, ch, cat, text, subj, att, tv, var, content.Recipient(cid, ext, nick, name, tz), phone, email)


def _rows(delivery_ids: list[int]) -> list[_Row]:
    """Claimed deliveries read again (a test's view of what the sender sees)."""
    rows = (
        Delivery.objects.filter(pk__in=delivery_ids, status=DeliveryStatus.SENDING)
        .order_by("pk")
        .values_list(*_COLUMNS)
    )
    return [_row(values) for values in rows]


def _handover_of(row: _Row, versions: dict, fields: dict) -> backends.Handover:
    rendered = content.render(
        customer=row.customer,
        version=versions.get(row.template_version_id),
        content=row.content,
        subject=row.subject,
        fields=fields.get(row.variant_id) or {},
    )
    address = {"sms": row.phone, "email": row.email}.get(row.channel, row.customer.external_id)
    marketing = row.category == Category.MARKETING
    body = tracking.links_tracked(rendered.body, delivery_id=row.pk) if marketing else rendered.body
    return backends.Handover(
        delivery_id=row.pk,
        idempotency_key=row.key,
        customer=row.customer.external_id,
        channel=row.channel,
        address=address,
        subject=rendered.subject,
        body=body,
        category=row.category,
        unsubscribe_url=unsubscribe_url(customer_id=row.customer.pk, channel=row.channel) if marketing else "",
    )


def _send_one(row: _Row, versions: dict, fields: dict) -> backends.Outcome:
    try:
        handover = _handover_of(row, versions, fields)
    except content.MissingVariable as missing:
        return backends.Outcome(status="failed", error=f"missing variable {missing.name}")
    except Exception as exc:  # a template the sandbox refuses at render: fail it, not the batch
        log.warning("render failed delivery=%s: %s", row.pk, type(exc).__name__)
        return backends.Outcome(status="failed", error=f"render failed: {type(exc).__name__}")
    while (wait := rate.take(row.channel)) > 0:
        time.sleep(wait)
    try:
        return backends.backend_for(row.channel).send(handover)
    except Exception as exc:  # a backend bug must not strand the batch in "sending"
        log.exception("backend raised delivery=%s", row.pk)
        return backends.Outcome(status="retry", error=f"backend error: {type(exc).__name__}")


def outbox_hand_over(*, rows: list[_Row]) -> HandoverCounts:
    """Hands each claimed delivery over and records the outcomes in one statement."""
    versions = {
        v.pk: v
        for v in SopTemplateVersion.objects.filter(pk__in={r.template_version_id for r in rows}).select_related(
            "template"
        )
    }
    fields = dict(Variant.objects.filter(pk__in={r.variant_id for r in rows}).values_list("pk", "field_values"))
    counts = HandoverCounts()
    outcomes: list[tuple] = []
    for row in rows:
        outcome = _send_one(row, versions, fields)
        at = timezone.now()
        if outcome.status == "sent":
            counts.sent += 1
            outcomes.append((row.pk, DeliveryStatus.SENT, at, at, None, outcome.provider_id[:100], ""))
        elif outcome.status == "retry" and row.attempts < settings.OPS_OUTBOX_MAX_ATTEMPTS:
            counts.retry += 1
            later = at + retry_delay(row.attempts, outcome.retry_after)
            outcomes.append((row.pk, DeliveryStatus.QUEUED, None, later, later, "", outcome.error[:200]))
        else:
            counts.failed += 1
            error = outcome.error if outcome.status == "failed" else f"gave up after {row.attempts}: {outcome.error}"
            outcomes.append((row.pk, DeliveryStatus.FAILED, None, None, None, "", error[:200]))
        if outcome.error:
            counts.by_error[outcome.error[:60]] = counts.by_error.get(outcome.error[:60], 0) + 1
    _outcomes_record(outcomes)
    return counts


def _outcomes_record(rows: list[tuple]) -> None:
    """(id, status, sent_at, send_after, planned_at, provider_id, last_error) per delivery.
    A sent delivery is counted by the caps at its hand-over; a failed one no longer is."""
    if not rows:
        return
    table = Delivery._meta.db_table
    cast = "::timestamptz" if connection.vendor == "postgresql" else ""
    values = ", ".join(["(%s, %s, %s" + cast + ", %s" + cast + ", %s" + cast + ", %s, %s)"] * len(rows))
    params = [value for row in rows for value in row]
    sql = f"""
        WITH v(id, status, sent_at, send_after, planned_at, provider_id, last_error) AS (VALUES {values})
        UPDATE {table} SET
            status = v.status,
            sent_at = COALESCE(v.sent_at, {table}.sent_at),
            send_after = CASE WHEN v.status = 'queued' THEN v.send_after ELSE {table}.send_after END,
            planned_at = CASE WHEN v.status = 'sent' THEN v.sent_at
                              WHEN v.status = 'failed' THEN NULL
                              ELSE v.planned_at END,
            provider_id = v.provider_id,
            last_error = v.last_error,
            claimed_at = NULL
        FROM v WHERE {table}.id = v.id AND {table}.status = 'sending'
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def outbox_drain(*, max_batches: int = 1000, now: datetime | None = None) -> HandoverCounts:
    """Claims and hands over batch after batch until nothing is due (or ``max_batches``)."""
    total = HandoverCounts()
    worker = worker_name()
    for _ in range(max_batches):
        rows = outbox_claim(now=now, worker=worker)
        if not rows:
            break
        total.add(outbox_hand_over(rows=rows))
    return total


def outbox_recover(*, now: datetime | None = None, lease_seconds: int | None = None) -> int:
    """Puts back in the queue every claim older than the lease (its worker died)."""
    now = now or timezone.now()
    lease = timedelta(seconds=settings.OPS_OUTBOX_LEASE_SECONDS if lease_seconds is None else lease_seconds)
    return Delivery.objects.filter(status=DeliveryStatus.SENDING, claimed_at__lt=now - lease).update(
        status=DeliveryStatus.QUEUED, claimed_at=None, send_after=now, recovered=F("recovered") + 1
    )

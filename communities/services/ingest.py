"""What the group bots send, written in bulk: messages, check-ins, activity sign-ups.

Each batch costs a fixed number of queries whatever its size: one read of the senders
named by customer, one of those named by platform member id, one of the rows already
stored, one insert (returning the new ids on PostgreSQL; a read-back elsewhere) and one
audit row (the batch, not each message: a bot sends millions). Nothing here loops
with a query per item.

- **Messages** are append-only and idempotent by ``external_id`` within the group: a
  replay is ``unchanged`` (the first write wins, even if the text differs). After the
  commit the keyword scan (``communities.messages_scan``) is queued with the new ids.
- **Check-ins** are once per member, group and the customer's local day; **sign-ups**
  once per member and activity. Each new one also appends an event through
  ``users.services.events_append_batch`` (``checkin`` / ``activity_joined``), so the
  incentive earning rules (check-in points, streaks, activity points, badges) pay
  through their own hook, on commit, in the worker — this module pays nothing itself.

Two concurrent batches with the same new message: the insert that loses the race skips
it (``ON CONFLICT DO NOTHING``) and answers it ``unchanged``; the winner's scan raises
its alerts."""

import re
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from core.batch import BatchResult, RowError, ValidatedBatch
from core.errors import ApplicationError
from core.services import audit_record
from users.rows import EventRow
from users.selectors import customer_refs
from users.services import events_append_batch

from ..models import Activity, ActivitySignup, CheckIn, CommunityGroup, GroupMessage, Membership


@dataclass(frozen=True)
class Sender:
    customer_id: int
    external_id: str
    timezone: str


def _senders(group: CommunityGroup, batch: ValidatedBatch) -> dict[int, Sender]:
    """The sender of each row (by index); rows naming an unknown customer or member are
    moved to the errors. Two queries, whatever the batch size."""
    by_customer = customer_refs(external_ids={row.customer for _, row in batch.rows if row.customer})
    member_ids = {row.member for _, row in batch.rows if row.member}
    by_member: dict[str, Sender] = {}
    if member_ids:
        spans = (
            Membership.objects.filter(group=group, platform_member_id__in=member_ids)
            # The open span first, then the latest: a member who left and rejoined is the same person.
            .order_by("platform_member_id", F("left_at").desc(nulls_first=True), "-joined_at")
            .values_list("platform_member_id", "customer_id", "customer__external_id", "customer__timezone")
        )
        for member, customer_id, external_id, tz in spans:
            by_member.setdefault(member, Sender(customer_id, external_id, tz))
    senders: dict[int, Sender] = {}
    errors: list[RowError] = []
    for index, row in batch.rows:
        if row.customer:
            customer = by_customer.get(row.customer)
            if customer is None:
                errors.append(
                    RowError(
                        index, "customer", f"Unknown customer {row.customer!r}: send it to /customers/batch first."
                    )
                )
                continue
            senders[index] = Sender(customer.pk, customer.external_id, customer.timezone)
        else:
            sender = by_member.get(row.member)
            if sender is None:
                errors.append(
                    RowError(
                        index, "member", f"No member {row.member!r} in the group {group.code!r}.", "unknown_member"
                    )
                )
                continue
            senders[index] = sender
    batch.reject_many(errors)
    return senders


def _audit(*, actor, action: str, group: CommunityGroup, created: int) -> None:
    """One audit row per batch that wrote something (who pushed how many into which group)."""
    if created:
        audit_record(actor=actor, action=action, obj=group, changes={"created": [None, created]})


def messages_ingest_batch(*, group: CommunityGroup, batch: ValidatedBatch, actor=None) -> BatchResult:
    from ..tasks.alerts import messages_scan_task  # the task module imports the alert services

    senders = _senders(group, batch)
    batch.raise_if_atomic_and_errors()
    result = BatchResult(errors=batch.errors)
    if not batch.rows:
        return result
    with transaction.atomic():
        stored = set(
            GroupMessage.objects.filter(group=group, external_id__in=[row.external_id for _, row in batch.rows])
            .values_list("external_id", flat=True)
            .order_by()
        )
        fresh = [
            (row.external_id, senders[index].customer_id, row.sent_at, row.text)
            for index, row in batch.rows
            if row.external_id not in stored
        ]
        ids = _messages_insert(group, fresh) if fresh else []
        if ids:
            _audit(actor=actor, action="community_messages.ingest", group=group, created=len(ids))
            messages_scan_task.delay_on_commit(ids)
    result.created = len(ids)
    result.unchanged = len(batch.rows) - result.created
    return result


_MESSAGE_COLUMNS = ["group_id", "external_id", "customer_id", "sent_at", "text", "ingested_at"]


def _messages_insert(group: CommunityGroup, rows: list[tuple]) -> list[int]:
    """Inserts new messages (``(external_id, customer_id, sent_at, text)``) and returns
    the ids of those this call inserted: a message a concurrent request inserted first
    is skipped (``ON CONFLICT DO NOTHING``) and left to that request's scan.

    On PostgreSQL one ``INSERT … SELECT FROM unnest(arrays) … RETURNING id`` (as
    ``users.services`` does for orders): building a model instance per row was most
    of a batch's time. Elsewhere ``bulk_create`` and a read-back of the ids."""
    now = timezone.now()
    if connection.vendor != "postgresql":
        GroupMessage.objects.bulk_create(
            [GroupMessage(group=group, external_id=x, customer_id=c, sent_at=at, text=t) for x, c, at, t in rows],
            batch_size=1000,
            ignore_conflicts=True,
        )
        return list(
            GroupMessage.objects.filter(group=group, external_id__in=[r[0] for r in rows], ingested_at__gte=now)
            .values_list("id", flat=True)
            .order_by("id")
        )
    quote = connection.ops.quote_name
    fields = [GroupMessage._meta.get_field(name) for name in ("group", "external_id", "customer", "sent_at", "text")]
    fields.append(GroupMessage._meta.get_field("ingested_at"))
    # Arrays of the base types (varchar, not varchar(128)): the assignment refuses a too-long value.
    arrays = ", ".join(f"%s::{re.sub(r'[(].*[)]', '', f.cast_db_type(connection))}[]" for f in fields)
    table = quote(GroupMessage._meta.db_table)
    sql = (
        f"INSERT INTO {table} ({', '.join(quote(f.column) for f in fields)}) SELECT * FROM unnest({arrays}) "
        f"ON CONFLICT ({quote('group_id')}, {quote('external_id')}) DO NOTHING RETURNING {quote('id')}"
    )
    columns = [
        [group.pk] * len(rows),
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2].isoformat() for r in rows],
        [r[3] for r in rows],
        [now.isoformat()] * len(rows),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, [_pg_array_literal(column) for column in columns])
        return sorted(r[0] for r in cursor.fetchall())


def _pg_array_literal(values: list) -> str:
    """``{"a","b"}``: one text parameter per column, parsed by PostgreSQL into an array
    (psycopg2 adapting a list element by element costs ten times more). The text
    holds no NUL (``core.validation`` refuses it), so NUL can join the values."""
    joined = "\x00".join(map(str, values)).replace("\\", "\\\\").replace('"', '\\"')
    return '{"' + joined.replace("\x00", '","') + '"}'


def _local_day(at: datetime, tz: str) -> date:
    return at.astimezone(ZoneInfo(tz or "UTC")).date()


def _append_events(event_rows: list[dict]) -> None:
    """The events the earning rules read, through the users app's one write path (its
    hook queues the incentive rules on commit). Built from rows already checked here,
    so they validate; a deterministic ``external_id`` keeps a replay from doubling them."""
    if not event_rows:
        return
    rows = [(i, EventRow.model_validate(item)) for i, item in enumerate(event_rows)]
    events_append_batch(batch=ValidatedBatch(rows=rows, errors=[], atomic=False))


def checkins_ingest_batch(*, group: CommunityGroup, batch: ValidatedBatch, actor=None) -> BatchResult:
    senders = _senders(group, batch)
    batch.raise_if_atomic_and_errors()
    result = BatchResult(errors=batch.errors)
    if not batch.rows:
        return result
    wanted: dict[tuple[int, date], tuple] = {}
    for index, row in batch.rows:
        sender = senders[index]
        wanted.setdefault((sender.customer_id, _local_day(row.at, sender.timezone)), (row, sender))
    with transaction.atomic():
        stored = set(
            CheckIn.objects.filter(
                group=group,
                customer_id__in={cid for cid, _day in wanted},
                day__in={day for _cid, day in wanted},
            )
            .values_list("customer_id", "day")
            .order_by()
        )
        fresh = {key: value for key, value in wanted.items() if key not in stored}
        CheckIn.objects.bulk_create(
            [
                CheckIn(group=group, customer_id=cid, day=day, at=row.at, external_id=row.external_id or "")
                for (cid, day), (row, _sender) in fresh.items()
            ],
            batch_size=1000,
            ignore_conflicts=True,
        )
        _append_events(
            [
                {
                    "customer": sender.external_id,
                    "type": "checkin",
                    "occurred_at": row.at.isoformat(),
                    "properties": {"group": group.code},
                    "external_id": f"community:checkin:{group.pk}:{cid}:{day.isoformat()}",
                }
                for (cid, day), (row, sender) in fresh.items()
            ]
        )
        _audit(actor=actor, action="community_checkins.ingest", group=group, created=len(fresh))
    result.created = len(fresh)
    result.unchanged = len(batch.rows) - result.created
    return result


ACTIVITY_CODE = re.compile(r"[-a-zA-Z0-9_]{1,64}")


def activity_upsert(
    *, group: CommunityGroup, code: str, title: str, starts_at: datetime, ends_at: datetime | None, actor=None
) -> tuple[Activity, bool]:
    """Creates the group's activity ``code`` or updates its title and times; answers
    whether it was created. Sending the same again changes nothing (no audit row). A
    code is a slug of at most 64 characters (letters, digits, ``-`` and ``_``)."""
    if not ACTIVITY_CODE.fullmatch(code):
        raise ApplicationError(
            _("An activity code is 1 to 64 letters, digits, hyphens or underscores, not %(code)r.")
            % {"code": code[:80]},
            code="invalid_activity_code",
        )
    with transaction.atomic():
        activity, created = Activity.objects.select_for_update().get_or_create(
            group=group, code=code, defaults={"title": title, "starts_at": starts_at, "ends_at": ends_at}
        )
        before = {"title": activity.title, "starts_at": activity.starts_at, "ends_at": activity.ends_at}
        after = {"title": title, "starts_at": starts_at, "ends_at": ends_at}
        if created:
            audit_record(actor=actor, action="community_activity.create", obj=activity, after=after)
        elif before != after:
            for name, value in after.items():
                setattr(activity, name, value)
            activity.save(update_fields=list(after))
            audit_record(actor=actor, action="community_activity.update", obj=activity, before=before, after=after)
    return activity, created


def signups_ingest_batch(*, activity: Activity, batch: ValidatedBatch, actor=None) -> BatchResult:
    group = activity.group
    senders = _senders(group, batch)
    batch.raise_if_atomic_and_errors()
    result = BatchResult(errors=batch.errors)
    if not batch.rows:
        return result
    wanted: dict[int, tuple] = {}
    for index, row in batch.rows:
        wanted.setdefault(senders[index].customer_id, (row, senders[index]))
    with transaction.atomic():
        stored = set(
            ActivitySignup.objects.filter(activity=activity, customer_id__in=list(wanted))
            .values_list("customer_id", flat=True)
            .order_by()
        )
        fresh = {cid: value for cid, value in wanted.items() if cid not in stored}
        ActivitySignup.objects.bulk_create(
            [ActivitySignup(activity=activity, customer_id=cid, at=row.at) for cid, (row, _s) in fresh.items()],
            batch_size=1000,
            ignore_conflicts=True,
        )
        _append_events(
            [
                {
                    "customer": sender.external_id,
                    "type": "activity_joined",
                    "occurred_at": row.at.isoformat(),
                    "properties": {"group": group.code, "activity": activity.code},
                    "external_id": f"community:activity:{activity.pk}:{cid}",
                }
                for cid, (row, sender) in fresh.items()
            ]
        )
        _audit(actor=actor, action="community_signups.ingest", group=group, created=len(fresh))
    result.created = len(fresh)
    result.unchanged = len(batch.rows) - result.created
    return result

"""What the group bots send, written in bulk: messages, check-ins, activity sign-ups.

Each batch costs a fixed number of queries whatever its size: one read of the senders
named by customer, one of those named by platform member id, one of the rows already
stored, one insert, one read-back of the new rows' ids and one audit row (the batch,
not each message: a bot sends millions). Nothing here loops with a query per item.

- **Messages** are append-only and idempotent by ``external_id`` within the group: a
  replay is ``unchanged`` (the first write wins, even if the text differs). After the
  commit the keyword scan (``communities.messages_scan``) is queued with the new ids.
- **Check-ins** are once per member, group and the customer's local day; **sign-ups**
  once per member and activity. Each new one also appends an event through
  ``users.services.events_append_batch`` (``checkin`` / ``activity_joined``), so the
  incentive earning rules (check-in points, streaks, activity points, badges) pay
  through their own hook, on commit, in the worker — this module pays nothing itself.

Two concurrent batches with the same new message both answer it as created (the
insert skips the conflicting row and the read-back finds the other's); the scan is
idempotent, so the alert is raised once."""

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import F

from core.batch import BatchResult, RowError, ValidatedBatch
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
        new = [
            GroupMessage(
                group=group,
                external_id=row.external_id,
                customer_id=senders[index].customer_id,
                sent_at=row.sent_at,
                text=row.text,
            )
            for index, row in batch.rows
            if row.external_id not in stored
        ]
        if new:
            GroupMessage.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
            ids = list(
                GroupMessage.objects.filter(group=group, external_id__in=[m.external_id for m in new])
                .values_list("id", flat=True)
                .order_by("id")
            )
            _audit(actor=actor, action="community_messages.ingest", group=group, created=len(new))
            messages_scan_task.delay_on_commit(ids)
    result.created = len(new)
    result.unchanged = len(batch.rows) - result.created
    return result


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


def activity_upsert(
    *, group: CommunityGroup, code: str, title: str, starts_at: datetime, ends_at: datetime | None, actor=None
) -> tuple[Activity, bool]:
    """Creates the group's activity ``code`` or updates its title and times; answers
    whether it was created. Sending the same again changes nothing (no audit row)."""
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

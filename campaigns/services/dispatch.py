"""A campaign occurrence sent: its audience cut into chunks, each decided and written in
one transaction (``write_chunk``), then the outbox's senders take over.

``write_chunk`` is idempotent: deliveries are keyed (campaign, customer, occurrence,
variant) and inserted ``ON CONFLICT (key) DO NOTHING``, so a chunk killed half-way
(rolled back) or run twice adds each delivery once.
"""

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from campaigns import rules
from campaigns.models import Campaign, CampaignStatus, Category, Delivery, DeliveryStatus, DispatchChunk, Variant
from campaigns.services import fanout
from campaigns.services.messages import delivery_fields
from campaigns.services.policy import contact_states_lock, policy_load

CHUNK = 10_000
ACTIVE = (CampaignStatus.SCHEDULED, CampaignStatus.RUNNING)


def campaign_send(campaign: Campaign, due: datetime) -> rules.Send:
    return rules.Send(
        channel=campaign.channel,
        category=campaign.category,
        due=due,
        content_class=campaign.content_class,
        max_delay=timedelta(hours=campaign.max_delay_hours),
        on_hold=campaign.on_hold,
    )


def delivery_key(campaign_id: int, customer_id: int, occurrence: str, variant_code: str) -> str:
    return f"c{campaign_id}:{customer_id}:{occurrence}:{variant_code}"


def _variants(campaign: Campaign) -> list[Variant]:
    return list(campaign.variants.order_by("code"))


def _insert_sql(campaign: Campaign, variants: list[Variant], occurrence: str, due: datetime, decision_sql: str) -> str:
    lit = fanout._lit
    bucket = f"((dd.customer_id * 7919 + {int(campaign.pk)} * 104729) %% 100)"
    edge, cases_id, cases_code, cases_version, cases_subject = 0, [], [], [], []
    for variant in variants:
        edge += variant.share
        cond = f"WHEN {bucket} < {edge}"
        cases_id.append(f"{cond} THEN {variant.pk}")
        cases_code.append(f"{cond} THEN {lit(variant.code)}")
        cases_version.append(f"{cond} THEN {variant.template_version_id or 'NULL'}")
        cases_subject.append(f"{cond} THEN {lit(variant.subject)}")

    def case(items, default):
        return f"(CASE {' '.join(items)} ELSE {default} END)"

    last = variants[-1]
    code = case(cases_code, lit(last.code))
    table = Delivery._meta.db_table
    return f"""
        INSERT INTO {table} (key, campaign_id, variant_id, occurrence, customer_id, channel, category,
            content_class, template_version_id, subject, content, status, reason, rule, due_at, send_after,
            planned_at, attempts, recovered, revenue, provider_id, last_error, claimed_by, created_at)
        SELECT 'c' || {int(campaign.pk)} || ':' || dd.customer_id || ':' || {lit(occurrence)} || ':' || {code},
            {int(campaign.pk)}, {case(cases_id, last.pk)}, {lit(occurrence)}, dd.customer_id,
            {lit(campaign.channel)}, {lit(campaign.category)}, {lit(campaign.content_class)},
            {case(cases_version, last.template_version_id or "NULL")}, {case(cases_subject, lit(last.subject))}, '',
            dd.status, dd.reason, dd.rule, {lit(due)}, dd.send_after, dd.send_after, 0, 0, 0, '', '', '', now()
        FROM ({decision_sql}) dd
        ON CONFLICT (key) DO NOTHING"""


def _write_python(campaign, variants, occurrence, due, decisions: dict[int, rules.Decision]) -> int:
    """The rows for decisions made in Python; those already written (a chunk run again)
    are left alone."""
    written = set(
        Delivery.objects.filter(campaign=campaign, occurrence=occurrence, customer_id__in=list(decisions)).values_list(
            "customer_id", flat=True
        )
    )
    rows = []
    for customer_id, decision in decisions.items():
        if customer_id in written:
            continue
        variant = fanout.variant_for(variants, fanout.variant_bucket(campaign.pk, customer_id))
        rows.append(
            Delivery(
                key=delivery_key(campaign.pk, customer_id, occurrence, variant.code),
                campaign_id=campaign.pk,
                variant_id=variant.pk,
                occurrence=occurrence,
                customer_id=customer_id,
                channel=campaign.channel,
                category=campaign.category,
                content_class=campaign.content_class,
                template_version_id=variant.template_version_id,
                subject=variant.subject,
                due_at=due,
                **delivery_fields(decision),
            )
        )
    return len(Delivery.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000))


def write_chunk(*, chunk_id: int) -> int:
    """Decides and writes one chunk's deliveries, once: a chunk already done, or of a
    campaign no longer active (paused, cancelled), writes nothing. Returns how many
    deliveries it wrote."""
    with transaction.atomic():
        chunk = DispatchChunk.objects.select_for_update().filter(pk=chunk_id, done_at=None).first()
        if chunk is None:
            return 0
        campaign = Campaign.objects.filter(pk=chunk.campaign_id, status__in=ACTIVE).first()
        if campaign is None:
            return 0
        ids = chunk.customer_ids if chunk.customer_ids is not None else audience_ids(campaign, chunk.lo, chunk.hi)
        written = _write(campaign, chunk.occurrence, chunk.due_at, ids) if ids else 0
        chunk.written, chunk.done_at = written, timezone.now()
        chunk.save(update_fields=["written", "done_at"])
        if written:
            from campaigns.tasks import outbox_send_task  # the task module imports the services

            outbox_send_task.delay_on_commit()
    return written


def _write(campaign: Campaign, occurrence: str, due: datetime, ids: list[int]) -> int:
    variants = _variants(campaign)
    send = campaign_send(campaign, due)
    policy = policy_load()
    contact_states_lock(customer_ids=ids, load=False)
    if connection.vendor == "postgresql" and send.category == Category.MARKETING:
        with connection.cursor() as cursor:
            # Those with a send planned after this one, before this one's rows join them.
            params = fanout.sql_params(ids)
            cursor.execute(fanout.future_sql(send=send, policy=policy, ids=ids), params)
            rest = [row[0] for row in cursor.fetchall()]
            decision = fanout.decision_sql(send=send, policy=policy, ids=ids)
            cursor.execute(_insert_sql(campaign, variants, occurrence, due, decision), params)
            written = cursor.rowcount
        if rest:
            decided = fanout.decisions_python(ids=rest, send=send, policy=policy)
            written += _write_python(campaign, variants, occurrence, due, decided)
        return written
    return _write_python(campaign, variants, occurrence, due, fanout.decisions(ids=ids, send=send, policy=policy))


def audience_chunks(campaign: Campaign, *, size: int = CHUNK) -> list[tuple[int, int]]:
    return fanout.chunk_ranges(campaign, size=size)


def audience_ids(campaign: Campaign, lo: int, hi: int) -> list[int]:
    return list(fanout.audience(campaign).filter(pk__gte=lo, pk__lt=hi).order_by("pk").values_list("pk", flat=True))


def occurrence_start(
    *, campaign_id: int, occurrence: str, due: datetime, customer_ids: list[int] | None = None
) -> list[int]:
    """Marks the campaign running for ``occurrence`` and records its chunks — id ranges
    of the audience, or (a trigger) the given customers in groups — once: starting an
    occurrence again answers the chunks still pending. Returns their ids."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().filter(pk=campaign_id, status__in=ACTIVE).first()
        if campaign is None:
            return []
        campaign.status = CampaignStatus.RUNNING
        if occurrence > campaign.last_occurrence or not campaign.last_occurrence:
            campaign.last_occurrence = occurrence
        campaign.save(update_fields=["status", "last_occurrence", "updated_at"])
        if customer_ids is not None:
            members = (
                set(fanout.audience(campaign).filter(pk__in=customer_ids).values_list("pk", flat=True))
                if campaign.segments
                else set(customer_ids)
            )
            picked = sorted(members)
            chunks = [
                DispatchChunk(
                    campaign=campaign,
                    occurrence=occurrence,
                    due_at=due,
                    lo=picked[n],
                    hi=picked[min(n + CHUNK, len(picked)) - 1] + 1,
                    customer_ids=picked[n : n + CHUNK],
                )
                for n in range(0, len(picked), CHUNK)
            ]
        else:
            chunks = [
                DispatchChunk(campaign=campaign, occurrence=occurrence, due_at=due, lo=lo, hi=hi)
                for lo, hi in audience_chunks(campaign)
            ]
        DispatchChunk.objects.bulk_create(chunks, ignore_conflicts=True)
        return list(
            DispatchChunk.objects.filter(campaign=campaign, occurrence=occurrence, done_at=None)
            .order_by("lo")
            .values_list("pk", flat=True)
        )


def chunks_pending(*, campaign_id: int) -> list[int]:
    """A paused campaign's chunks still to write (sent again when it is launched again)."""
    return list(
        DispatchChunk.objects.filter(campaign_id=campaign_id, done_at=None).order_by("pk").values_list("pk", flat=True)
    )


def campaigns_complete(*, now: datetime | None = None) -> int:
    """One-off campaigns whose deliveries are all decided and handed over (or failed,
    or suppressed) are completed."""
    now = now or timezone.now()
    pending = Delivery.objects.filter(
        status__in=[DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED, DeliveryStatus.SENDING]
    ).values("campaign_id")
    unwritten = DispatchChunk.objects.filter(done_at=None).values("campaign_id")
    return (
        Campaign.objects.filter(status=CampaignStatus.RUNNING, schedule="once")
        .exclude(pk__in=pending)
        .exclude(pk__in=unwritten)
        .update(status=CampaignStatus.COMPLETED, updated_at=now)
    )

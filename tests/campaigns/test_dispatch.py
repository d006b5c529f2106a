"""A campaign from launch to hand-over: its audience decided under the contact policy
and written once per occurrence, its variants split, pause and cancel obeyed."""

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.backends import read_log
from campaigns.models import Campaign, Delivery, DispatchChunk
from campaigns.services import campaigns as campaign_services
from campaigns.services import dispatch, outbox
from campaigns.services.campaigns import VariantSpec
from core.errors import ApplicationError, Conflict
from tests.queued import queued_tasks, run_queued
from tests.users.factories import CustomerFactory


def _campaign(segment: str, *, variants=None, **data) -> Campaign:
    return campaign_services.campaign_create(
        data={"name": "Spring sale", "channel": "push", "segments": [segment]} | data,
        variants=variants or [VariantSpec("A", 50, "promo"), VariantSpec("B", 50, "promo", subject="B subject")],
    )


@pytest.fixture
def audience(db, static_segment):
    customers = [CustomerFactory(consent_push=n % 10 != 0, do_not_contact=n == 7) for n in range(60)]
    return customers, static_segment("spring", customers)


def test_launch_decides_every_customer_and_the_outbox_hands_over_the_queued(
    audience, approved_template, channel_log, no_quiet_hours, django_capture_on_commit_callbacks
):
    _customers, segment = audience
    campaign = _campaign(segment)
    with django_capture_on_commit_callbacks() as callbacks:
        campaign_services.campaign_launch(campaign=campaign)
    queued = run_queued(callbacks)
    assert list(queued) == ["campaigns.dispatch"]
    for chunk in DispatchChunk.objects.filter(campaign=campaign):
        dispatch.write_chunk(chunk_id=chunk.pk)
    deliveries = Delivery.objects.filter(campaign=campaign)
    assert deliveries.count() == 60
    statuses = Counter(deliveries.values_list("status", "reason"))
    assert statuses == {("queued", ""): 53, ("suppressed", "no_consent"): 6, ("suppressed", "do_not_contact"): 1}
    # A customer stays in one variant: the split is by customer, about half and half.
    variants = Counter(deliveries.values_list("variant__code", flat=True))
    assert set(variants) == {"A", "B"} and all(15 <= n <= 45 for n in variants.values())
    for d in deliveries.select_related("variant")[:10]:
        assert d.key == f"c{campaign.pk}:{d.customer_id}:once:{d.variant.code}"
        assert d.template_version_id == approved_template.approved_version_id

    counts = outbox.outbox_drain()
    assert counts.sent == 53 and counts.failed == 0
    lines = read_log(channel_log)
    assert len(lines) == 53 and len({line["key"] for line in lines}) == 53

    # The same chunk (or the whole occurrence) again: nothing new.
    chunk = DispatchChunk.objects.filter(campaign=campaign).first()
    assert dispatch.write_chunk(chunk_id=chunk.pk) == 0
    DispatchChunk.objects.filter(pk=chunk.pk).update(done_at=None)  # as if its first run had died
    assert dispatch.write_chunk(chunk_id=chunk.pk) == 0
    assert Delivery.objects.filter(campaign=campaign).count() == 60
    assert dispatch.campaigns_complete() == 1
    campaign.refresh_from_db()
    assert campaign.status == "completed"


def test_the_rendered_message_uses_the_customer_and_the_variant(
    audience, approved_template, channel_log, no_quiet_hours, settings, tmp_path
):
    _customers, segment = audience
    campaign = _campaign(segment)
    campaign_services.campaign_launch(campaign=campaign)
    for chunk_id in dispatch.occurrence_start(campaign_id=campaign.pk, occurrence="once", due=timezone.now()):
        dispatch.write_chunk(chunk_id=chunk_id)
    delivery = Delivery.objects.filter(campaign=campaign, status="queued").select_related("customer", "variant").first()
    Delivery.objects.filter(pk=delivery.pk).update(status="sending")  # as claimed
    (row,) = outbox._rows([delivery.pk])
    versions = {delivery.template_version_id: approved_template.approved_version}
    handover = outbox._handover_of(row, versions, {})
    assert handover.body == f"Hi {delivery.customer.nickname}, spring sale!"
    assert handover.idempotency_key == delivery.key and handover.unsubscribe_url.startswith(settings.OPS_SITE_URL)
    assert handover.subject == (delivery.variant.subject or "Spring promo")


def test_a_second_campaign_the_same_minute_is_deferred_by_the_caps(
    audience, approved_template, channel_log, no_quiet_hours
):
    _customers, segment = audience
    first, second = _campaign(segment), _campaign(segment, name="Second")
    for campaign in (first, second):
        campaign_services.campaign_launch(campaign=campaign)
        for chunk_id in dispatch.occurrence_start(campaign_id=campaign.pk, occurrence="once", due=timezone.now()):
            dispatch.write_chunk(chunk_id=chunk_id)
    held = Counter(Delivery.objects.filter(campaign=second).values_list("status", "reason", "rule"))
    assert held[("deferred", "cap", "cap:push-3-7")] == 53


def test_pause_holds_the_outbox_and_cancel_suppresses_what_is_left(
    audience, approved_template, channel_log, no_quiet_hours
):
    _customers, segment = audience
    campaign = _campaign(segment)
    campaign_services.campaign_launch(campaign=campaign)
    for chunk_id in dispatch.occurrence_start(campaign_id=campaign.pk, occurrence="once", due=timezone.now()):
        dispatch.write_chunk(chunk_id=chunk_id)
    with pytest.raises(Conflict):  # a running campaign is paused before it is changed
        campaign_services.campaign_update(campaign=campaign, changes={"name": "Renamed"})
    campaign_services.campaign_pause(campaign=campaign)
    assert outbox.outbox_drain().sent == 0  # its deliveries wait
    campaign = campaign_services.campaign_update(campaign=campaign, changes={"name": "Renamed"})
    campaign_services.campaign_cancel(campaign=campaign)
    assert outbox.outbox_drain().sent == 0
    left = Counter(Delivery.objects.filter(campaign=campaign).values_list("status", "reason"))
    assert left[("suppressed", "cancelled")] == 53 and ("queued", "") not in left
    with pytest.raises(Conflict):
        campaign_services.campaign_pause(campaign=campaign)


@pytest.mark.parametrize(
    ("data", "variants", "code"),
    [
        ({"segments": []}, None, "no_audience"),
        ({"segments": ["no-such-segment"]}, None, "unknown_segment"),
        ({}, [VariantSpec("A", 60, "promo"), VariantSpec("B", 30, "promo")], "invalid_split"),
        ({}, [VariantSpec("A", 100, "nope")], "unknown_template"),
        ({"start_at": "past"}, None, "schedule_in_past"),
        ({"schedule": "recurring", "cron": "every day"}, None, "invalid_schedule"),
        ({"schedule": "triggered"}, None, "invalid_trigger"),
        ({"channel": "fax"}, None, "unknown_channel"),
        ({"max_delay_hours": -1}, None, "out_of_range"),
    ],
)
def test_bad_campaigns_are_refused_with_a_reason_and_write_nothing(audience, approved_template, data, variants, code):
    _customers, segment = audience
    if data.get("start_at") == "past":
        data = {"start_at": timezone.now() - timedelta(hours=1)}
    data = {"name": "Bad", "channel": "push", "segments": [segment]} | data
    variants = variants or [VariantSpec("A", 100, "promo")]
    with pytest.raises(ApplicationError) as exc:
        campaign = campaign_services.campaign_create(data=data, variants=variants)
        campaign_services.campaign_launch(campaign=campaign)
    assert exc.value.code == code
    assert not Delivery.objects.exists() and not DispatchChunk.objects.exists()
    assert Campaign.objects.exclude(status="draft").count() == 0


def test_an_unapproved_template_cannot_be_launched(audience, make_user):
    from communities.services import templates

    _customers, segment = audience
    templates.template_create(code="draft-only", name="Draft", kind="campaign", body="Hi", actor=make_user("admin"))
    campaign = _campaign(segment, variants=[VariantSpec("A", 100, "draft-only")])
    with pytest.raises(ApplicationError) as exc:
        campaign_services.campaign_launch(campaign=campaign)
    assert exc.value.code == "template_not_approved"
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_a_variable_the_customer_lacks_fails_that_delivery_with_its_name(
    audience, make_user, channel_log, no_quiet_hours
):
    from communities.services import template_create, version_approve

    _customers, segment = audience
    writer, approver = make_user("admin", username="w2"), make_user("admin", username="a2")
    template = template_create(code="grouped", name="Grouped", kind="campaign", body="{{ group }} 欢迎你", actor=writer)
    version_approve(version=template.versions.get(), actor=approver)
    campaign = _campaign(segment, variants=[VariantSpec("A", 100, "grouped")])
    campaign_services.campaign_launch(campaign=campaign)
    for chunk_id in dispatch.occurrence_start(campaign_id=campaign.pk, occurrence="once", due=timezone.now()):
        dispatch.write_chunk(chunk_id=chunk_id)
    counts = outbox.outbox_drain()
    assert (counts.sent, counts.failed) == (0, 53)
    errors = set(Delivery.objects.filter(campaign=campaign, status="failed").values_list("last_error", flat=True))
    assert errors == {"missing variable group"}
    assert read_log(channel_log) == []  # nothing with a hole in it went out


def test_a_campaign_paused_before_its_chunks_ran_writes_them_when_launched_again(
    audience, approved_template, channel_log, no_quiet_hours, django_capture_on_commit_callbacks
):
    _customers, segment = audience
    campaign = _campaign(segment)
    campaign_services.campaign_launch(campaign=campaign)
    chunk_ids = dispatch.occurrence_start(campaign_id=campaign.pk, occurrence="once", due=timezone.now())
    campaign_services.campaign_pause(campaign=campaign)
    assert [dispatch.write_chunk(chunk_id=pk) for pk in chunk_ids] == [0] * len(chunk_ids)  # paused: nothing
    assert dispatch.chunks_pending(campaign_id=campaign.pk) == chunk_ids
    with django_capture_on_commit_callbacks() as callbacks:
        campaign_services.campaign_launch(campaign=Campaign.objects.get(pk=campaign.pk))
    assert queued_tasks(callbacks) == {"campaigns.resume": [(campaign.pk,)]}
    # What the resume task's chunk tasks do, one per pending chunk:
    assert sum(dispatch.write_chunk(chunk_id=pk) for pk in dispatch.chunks_pending(campaign_id=campaign.pk)) == 60
    assert dispatch.chunks_pending(campaign_id=campaign.pk) == []
    assert Delivery.objects.filter(campaign=campaign).count() == 60

"""When campaigns are due: one-off, recurring (cron in a timezone) and triggered, each
occurrence once."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Delivery, DispatchChunk
from campaigns.services import campaigns as services
from campaigns.services import dispatch, schedule
from campaigns.services.campaigns import VariantSpec
from campaigns.tasks import campaigns_tick_task
from segments.models import Segment, SegmentMembershipChange
from tests.users.factories import CustomerFactory

SHANGHAI_10_03 = datetime(2026, 12, 7, 2, 3, tzinfo=UTC)  # a Monday, 10:03 in Shanghai


def _launched(segment: str | None, **data) -> Campaign:
    campaign = services.campaign_create(
        data={"name": "Scheduled", "channel": "push", "segments": [segment] if segment else []} | data,
        variants=[VariantSpec("A", 100, "promo")],
    )
    return services.campaign_launch(campaign=campaign, now=data.get("start_at") or SHANGHAI_10_03 - timedelta(hours=1))


@pytest.fixture
def segment(db, static_segment):
    return static_segment("scheduled", [CustomerFactory() for _ in range(5)])


def test_a_recurring_campaign_is_due_once_at_each_matching_minute(segment, approved_template):
    campaign = _launched(segment, schedule="recurring", cron="0 10 * * 1", schedule_timezone="Asia/Shanghai")
    Campaign.objects.filter(pk=campaign.pk).update(updated_at=SHANGHAI_10_03 - timedelta(days=1))
    campaign.refresh_from_db()
    due = schedule.recurring_due(campaign, SHANGHAI_10_03)
    assert due is not None and due.occurrence == "20261207T1000"
    assert due.due == datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    dispatch.occurrence_start(campaign_id=campaign.pk, occurrence=due.occurrence, due=due.due)
    campaign.refresh_from_db()
    assert schedule.recurring_due(campaign, SHANGHAI_10_03) is None  # already sent
    assert schedule.recurring_due(campaign, SHANGHAI_10_03 + timedelta(days=1)) is None  # Tuesday
    assert schedule.recurring_due(campaign, SHANGHAI_10_03 + timedelta(days=7)).occurrence == "20261214T1000"


def test_a_one_off_is_due_at_its_time_and_the_tick_queues_it(
    segment, approved_template, django_capture_on_commit_callbacks, monkeypatch
):
    later = timezone.now() + timedelta(hours=2)
    campaign = services.campaign_launch(
        campaign=services.campaign_create(
            data={"name": "Later", "channel": "push", "segments": [segment], "start_at": later},
            variants=[VariantSpec("A", 100, "promo")],
        )
    )
    assert campaign.status == "scheduled" and schedule.due_now() == []
    due = schedule.due_now(now=later + timedelta(seconds=5))
    assert [(d.campaign_id, d.occurrence) for d in due] == [(campaign.pk, "once")]

    sent = []
    monkeypatch.setattr("campaigns.tasks.campaigns.campaign_dispatch_task.delay", lambda *a: sent.append(a))
    monkeypatch.setattr("campaigns.services.schedule.timezone.now", lambda: later + timedelta(seconds=5))
    campaigns_tick_task()
    assert [a[:2] for a in sent] == [(campaign.pk, "once")]


def test_signup_day_birthday_and_segment_entry_triggers_name_their_customers(db, approved_template):
    now = SHANGHAI_10_03
    new = CustomerFactory(signup_at=now - timedelta(days=3))
    CustomerFactory(signup_at=now - timedelta(days=5))
    born = CustomerFactory(birthday=date(1990, 12, 7))
    CustomerFactory(birthday=date(1990, 12, 8))
    # 02:03 UTC on the 7th is still the 6th in New York: her birthday is tomorrow there.
    CustomerFactory(birthday=date(1991, 12, 7), timezone="America/New_York")
    ny_today = CustomerFactory(birthday=date(1991, 12, 6), timezone="America/New_York")
    segment = Segment.objects.create(slug="vip-club", name="VIP club", kind="static")
    entered = CustomerFactory()
    SegmentMembershipChange.objects.create(
        segment=segment, customer=entered, change="enter", at=now - timedelta(hours=3)
    )

    onboarding = _launched(None, schedule="triggered", trigger="signup_day", trigger_value="3")
    birthday = _launched(None, schedule="triggered", trigger="birthday")
    welcome = _launched(None, schedule="triggered", trigger="segment_enter", trigger_value="vip-club")
    found = {d.campaign_id: (d.occurrence, d.customer_ids) for d in schedule.due_now(now=now)}
    assert found[onboarding.pk] == ("signup", [new.pk])
    assert found[birthday.pk] == ("birthday-2026", sorted([born.pk, ny_today.pk]))
    assert found[welcome.pk] == ("enter-20261206", [entered.pk])


def test_a_triggered_occurrence_is_sent_once_however_often_it_fires(db, approved_template, channel_log, no_quiet_hours):
    customer = CustomerFactory(signup_at=timezone.now() - timedelta(days=1))
    campaign = _launched(None, schedule="triggered", trigger="signup_day", trigger_value="1", start_at=timezone.now())
    for _ in range(3):  # the tick sees her on three ticks of the same day
        for chunk_id in dispatch.occurrence_start(
            campaign_id=campaign.pk, occurrence="signup", due=timezone.now(), customer_ids=[customer.pk]
        ):
            dispatch.write_chunk(chunk_id=chunk_id)
    assert Delivery.objects.filter(campaign=campaign, customer=customer).count() == 1
    assert DispatchChunk.objects.filter(campaign=campaign).count() == 1

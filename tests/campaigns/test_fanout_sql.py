"""The fan-out's set-based SQL decides exactly as ``campaigns.rules`` does, over random
customers and histories: consent, do-not-contact, unsubscribes, every cap window,
back-off (with and without responses), quiet hours in several timezones."""

import random
from datetime import UTC, datetime, time, timedelta

import pytest

from campaigns import rules
from campaigns.models import ContactState, Delivery
from campaigns.services import fanout
from campaigns.services.policy import policy_load, policy_settings
from users.models import Customer

ZONES = ["Asia/Shanghai", "UTC", "Asia/Tokyo", "America/Sao_Paulo", "Not/AZone"]
STATUSES = ["sent", "sent", "delivered", "opened", "queued", "failed", "suppressed", "clicked"]
CHANNELS = ["push", "push", "push", "sms", "wechat", "email"]
CLASSES = ["", "", "regular", "in_depth", "interactive"]


def _world(seed: int, due: datetime, customers: int = 150) -> list[int]:
    rng = random.Random(seed)
    Customer.objects.bulk_create(
        [
            Customer(
                external_id=f"s{seed}-{n}",
                timezone=rng.choice(ZONES),
                consent_push=rng.random() < 0.85,
                consent_sms=rng.random() < 0.7,
                consent_wechat=rng.random() < 0.8,
                do_not_contact=rng.random() < 0.05,
            )
            for n in range(customers)
        ]
    )
    ids = [c.pk for c in Customer.objects.filter(external_id__startswith=f"s{seed}-").order_by("pk")]
    ContactState.objects.bulk_create(
        [ContactState(customer_id=pk, unsubscribed=["push"]) for pk in ids if rng.random() < 0.05]
    )
    rows = []
    for pk in ids:
        for n in range(rng.choice([0, 1, 2, 3, 4, 6, 9])):
            # Mostly recent (inside the caps' windows), some older; on whole minutes or not.
            back = timedelta(
                minutes=rng.choice([rng.randint(1, 600), rng.randint(1, 4 * 1440), rng.randint(1, 31 * 1440)])
            )
            at = due - back - timedelta(seconds=rng.choice([0, 0, 17]))
            status = rng.choice(STATUSES)
            handed = status in ("sent", "delivered", "opened", "clicked")
            rows.append(
                Delivery(
                    key=f"r{seed}:{pk}:{n}",
                    customer_id=pk,
                    channel=rng.choice(CHANNELS),
                    category="marketing" if rng.random() < 0.9 else "transactional",
                    content_class=rng.choice(CLASSES),
                    status=status,
                    due_at=at,
                    send_after=at,
                    planned_at=None if status in ("failed", "suppressed") else at,
                    sent_at=at if handed else None,
                    opened_at=at + timedelta(minutes=5) if status in ("opened", "clicked") else None,
                )
            )
        if rng.random() < 0.06:  # a send deferred to later: its windows reach into the future
            later = due + timedelta(minutes=rng.randint(1, 3000))
            rows.append(
                Delivery(key=f"r{seed}:{pk}:later", customer_id=pk, channel=rng.choice(CHANNELS), category="marketing",
                         status="deferred", due_at=due, send_after=later, planned_at=later)
            )  # fmt: skip
    Delivery.objects.bulk_create(rows, batch_size=1000)
    return ids


@pytest.mark.postgres
@pytest.mark.parametrize("seed", range(8))
def test_the_sql_decides_like_the_rules(db, seed):
    rng = random.Random(1000 + seed)
    knobs = policy_settings()
    knobs.quiet_start, knobs.quiet_end = rng.choice([(time(22), time(8)), (time(12), time(14)), (time(0), time(0))])
    knobs.backoff_after = rng.choice([1, 2, 3])
    knobs.save()
    policy = policy_load()
    due = datetime(2026, 6, 15, rng.randint(0, 23), rng.choice([0, 30, 59]), tzinfo=UTC)
    ids = _world(seed, due)
    for channel, content_class in (("push", ""), ("sms", ""), ("wechat", "regular"), ("wechat", "in_depth")):
        send = rules.Send(
            channel=channel,
            category=rules.MARKETING,
            due=due,
            content_class=content_class,
            max_delay=rng.choice([None, timedelta(hours=6), timedelta(hours=48)]),
            on_hold=rng.choice([rules.DEFER, rules.DEFER, rules.SUPPRESS]),
        )
        by_sql = fanout.decisions_sql(ids=ids, send=send, policy=policy)
        by_rules = fanout.decisions_python(ids=ids, send=send, policy=policy)
        assert len(by_sql) > 0.8 * len(ids)  # most customers have no send planned later
        mismatches = {
            pk: (by_sql[pk], by_rules[pk])
            for pk in by_sql
            if (by_sql[pk].status, by_sql[pk].reason, by_sql[pk].rule, by_sql[pk].send_after)
            != (by_rules[pk].status, by_rules[pk].reason, by_rules[pk].rule, by_rules[pk].send_after)
        }
        assert mismatches == {}, (channel, list(mismatches.items())[:3])
        # The ones left to the rules are exactly those with a send planned after this one
        # (the cross-channel cap counts every channel).
        later = set(
            Delivery.objects.filter(
                customer_id__in=ids, category="marketing", status="deferred", planned_at__gt=due
            ).values_list("customer_id", flat=True)
        )
        assert later and set(ids) - set(by_sql) == later
        SEEN.update((d.status, d.reason) for d in by_sql.values())


SEEN: set = set()


@pytest.mark.postgres
def test_the_random_worlds_reached_every_kind_of_decision():
    """Run after the seeds above (same module, in order): they met every outcome."""
    assert {
        ("queued", ""),
        ("deferred", "cap"),
        ("suppressed", "cap"),
        ("deferred", "quiet_hours"),
        ("suppressed", "no_consent"),
        ("suppressed", "do_not_contact"),
        ("suppressed", "unsubscribed"),
    } <= SEEN, SEEN
    assert any(reason == "backoff" for _status, reason in SEEN), SEEN


@pytest.mark.postgres
def test_back_off_that_ends_where_quiet_hours_would_anyway_is_named_quiet_hours(db):
    """The reduced push window has room at 08:00 local, the end of the quiet hours the
    due instant is in: without back-off it waits for 08:00 all the same, so the reason
    is the quiet hours, in the SQL as in the rules."""
    knobs = policy_settings()
    knobs.quiet_start, knobs.quiet_end, knobs.backoff_after = time(22), time(8), 1
    knobs.save()
    customer = Customer.objects.create(external_id="edge", timezone="Asia/Shanghai", consent_push=True)
    day1 = datetime(2026, 6, 15, tzinfo=UTC)  # 08:00 in Shanghai
    for n, hours in enumerate((0, 3, 6)):
        at = day1 + timedelta(hours=hours)
        Delivery.objects.create(
            key=f"edge-{n}", customer=customer, channel="push", category="marketing", status="sent",
            due_at=at, send_after=at, planned_at=at, sent_at=at,
        )  # fmt: skip
    due = day1 + timedelta(hours=15)  # 23:00 in Shanghai: quiet
    send = rules.Send(channel="push", category=rules.MARKETING, due=due)
    policy = policy_load()
    by_sql = fanout.decisions_sql(ids=[customer.pk], send=send, policy=policy)[customer.pk]
    by_rules = fanout.decisions_python(ids=[customer.pk], send=send, policy=policy)[customer.pk]
    assert by_sql == by_rules
    assert (by_sql.status, by_sql.reason, by_sql.send_after) == ("deferred", "quiet_hours", day1 + timedelta(days=1))

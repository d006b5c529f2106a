"""The contact policy (campaigns.rules): pure functions, so no database here.

Hand-checked cases for each rule, then randomized comparisons with a minute-by-minute
brute force and with the independent ``violations`` check.
"""

import math
import random
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from campaigns.rules import (
    DEFER,
    DEFERRED,
    MARKETING,
    QUEUED,
    R_BACKOFF,
    R_CAP,
    R_DNC,
    R_NO_CONSENT,
    R_QUIET,
    R_UNSUBSCRIBED,
    SUPPRESS,
    SUPPRESSED,
    TRANSACTIONAL,
    Cap,
    Decision,
    Planned,
    Policy,
    Recipient,
    Send,
    Window,
    decide,
    default_caps,
    earliest_allowed,
    is_quiet,
    quiet_end_after,
    violations,
    window_feasible,
)

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
HOUR, DAY = 3600, 86400
POLICY = Policy(caps=default_caps())
# Quiet hours off, to look at the caps alone.
NO_QUIET = Policy(caps=default_caps(), quiet_start=time(0), quiet_end=time(0))
CHANNELS = ("push", "sms", "wechat", "email")


def utc(hour, minute=0, day=0):
    """An instant on Monday 2025-03-03 (UTC), ``day`` days later."""
    return datetime(2025, 3, 3, hour, minute, tzinfo=UTC) + timedelta(days=day)


def sh(hour, minute=0, day=0):
    """The same, in Shanghai local time (no DST there)."""
    return datetime(2025, 3, 3, hour, minute, tzinfo=SH) + timedelta(days=day)


def who(tz="UTC", **changes):
    """A recipient who consented to every channel."""
    return Recipient(
        consent=changes.pop("consent", dict.fromkeys(CHANNELS, True)),
        do_not_contact=changes.pop("do_not_contact", False),
        timezone=tz,
        **changes,
    )


def marketing(due, channel="push", **changes):
    return Send(channel=channel, category=MARKETING, due=due, **changes)


def planned(*instants, channel="push", content_class=""):
    return [Planned(at=at, channel=channel, content_class=content_class) for at in instants]


def run(send, history=(), recipient=None, policy=NO_QUIET):
    return decide(send=send, recipient=recipient or who(), history=list(history), policy=policy)


def deferred(at, reason, rule):
    return Decision(DEFERRED, reason, rule, at)


# --- the caps --------------------------------------------------------------------------


def test_window_feasible_uses_half_open_rolling_windows():
    one_per_3h = Window(3 * HOUR, 1)
    points = [utc(10)]
    # After a send at 10:00 the next may go at 13:00 exactly, not a second sooner.
    assert not window_feasible(utc(12, 59) + timedelta(seconds=59), points, one_per_3h)
    assert window_feasible(utc(13), points, one_per_3h)
    # Before it: up to 07:00 ((07:00, 10:00] excludes 07:00 itself), not after.
    assert window_feasible(utc(7), points, one_per_3h)
    assert not window_feasible(utc(7) + timedelta(seconds=1), points, one_per_3h)
    assert not window_feasible(utc(10), points, one_per_3h)
    # Points need not be sorted nor in UTC.
    two_per_3h = Window(3 * HOUR, 2)
    assert window_feasible(utc(11), [sh(20), utc(9)], two_per_3h)  # sh(20) == utc(12)
    assert not window_feasible(utc(11), [utc(12), utc(9, 30)], two_per_3h)
    assert window_feasible(utc(11), [utc(12), utc(9)], two_per_3h)  # no window holds all three


def test_push_one_per_three_hours():
    history = planned(utc(10))
    assert run(marketing(utc(11)), history) == deferred(utc(13), R_CAP, "cap:push-3-7")
    assert run(marketing(utc(13)), history) == Decision(QUEUED, "", "", utc(13))
    # Another channel's send does not count against the push cap.
    assert run(marketing(utc(11)), planned(utc(10), channel="sms")).status == QUEUED


def test_a_planned_future_send_holds_back_the_sends_just_before_it():
    history = planned(utc(20))
    one_per_3h = Window(3 * HOUR, 1)
    assert window_feasible(utc(17), [utc(20)], one_per_3h)
    assert not window_feasible(utc(18), [utc(20)], one_per_3h)
    assert window_feasible(utc(23), [utc(20)], one_per_3h)
    assert run(marketing(utc(17)), history).status == QUEUED
    assert run(marketing(utc(18)), history) == deferred(utc(23), R_CAP, "cap:push-3-7")


def test_push_seven_a_day_the_eighth_waits_for_the_first_to_leave_the_window():
    history = planned(*(utc(h) for h in (0, 3, 6, 9, 12, 15, 18)))
    # 21:00 is 3 h after the last, but 7 already lie in the last 24 h: wait for 00:00 to drop out.
    assert run(marketing(utc(21)), history) == deferred(utc(0, day=1), R_CAP, "cap:push-3-7")
    assert run(marketing(utc(0, day=1)), history).status == QUEUED
    assert run(marketing(utc(21)), history[1:]).status == QUEUED


def test_sms_two_days_apart_and_eight_a_month():
    assert run(marketing(utc(11), "sms"), planned(utc(10), channel="sms")) == deferred(
        utc(10, day=2), R_CAP, "cap:sms-2-8"
    )
    eight = planned(*(utc(10, day=2 * i) for i in range(8)), channel="sms")  # days 0, 2, ... 14
    assert run(marketing(utc(10, day=16), "sms"), eight) == deferred(utc(10, day=30), R_CAP, "cap:sms-2-8")
    assert run(marketing(utc(10, day=16), "sms"), eight[1:]).status == QUEUED


def test_wechat_4_1_1_counts_each_class_on_its_own():
    regular = planned(*(utc(10, day=d) for d in range(4)), channel="wechat", content_class="regular")
    due = utc(10, day=4)
    assert run(marketing(due, "wechat", content_class="regular"), regular) == deferred(
        utc(10, day=7), R_CAP, "cap:wechat-4-1-1-regular"
    )
    assert run(marketing(due, "wechat", content_class="in_depth"), regular).status == QUEUED
    assert run(marketing(due, "wechat", content_class="interactive"), regular).status == QUEUED

    in_depth = planned(utc(10), channel="wechat", content_class="in_depth")
    assert run(marketing(due, "wechat", content_class="in_depth"), in_depth) == deferred(
        utc(10, day=7), R_CAP, "cap:wechat-4-1-1-in-depth"
    )
    assert run(marketing(due, "wechat", content_class="regular"), in_depth).status == QUEUED
    interactive = planned(utc(10), channel="wechat", content_class="interactive")
    assert run(marketing(due, "wechat", content_class="interactive"), interactive).rule == (
        "cap:wechat-4-1-1-interactive"
    )


def _eight_across_channels():
    return (
        planned(utc(0), utc(3), utc(6))
        + planned(utc(1), channel="sms")
        + planned(utc(2), utc(4), utc(5), utc(7), channel="wechat", content_class="regular")
    )


def test_cross_channel_cap_counts_every_channel():
    history = _eight_across_channels()
    # The push caps allow 09:00 (3 h after 06:00, 3 of 7); the eight of the day do not.
    assert run(marketing(utc(9)), history) == deferred(utc(0, day=1), R_CAP, "cap:all-channels-daily")
    assert run(marketing(utc(9), "email"), history).rule == "cap:all-channels-daily"
    assert run(marketing(utc(9)), history[1:]).status == QUEUED


def test_backoff_reduces_this_channels_caps_seven_to_three():
    history = planned(utc(8), utc(11), utc(14))
    due = utc(18)
    backed_off = who(unanswered={"push": 3})
    # 3 of 7 would pass; backed off to 3 it waits for 08:00 to leave the 24 h window.
    assert run(marketing(due), history, backed_off) == deferred(utc(8, day=1), R_BACKOFF, "backoff:push-3-7")
    assert run(marketing(due), history[1:], backed_off).status == QUEUED  # the third of three
    # Below the threshold, after a response (unanswered back to 0), or unanswered elsewhere: normal.
    for unanswered in ({"push": 2}, {"push": 0}, {}, {"sms": 5}):
        assert run(marketing(due), history, who(unanswered=unanswered)).status == QUEUED


def test_backoff_keeps_a_limit_of_one_and_then_the_reason_stays_cap():
    history = planned(utc(10))
    backed_off = who(unanswered={"push": 3})
    # 1 -> max(1, floor(0.5)) = 1: the 3 h window binds exactly as without back-off.
    assert run(marketing(utc(11)), history, backed_off) == deferred(utc(13), R_CAP, "cap:push-3-7")


def test_backoff_factor_and_threshold_come_from_the_policy():
    strict = Policy(caps=default_caps(), quiet_start=time(0), quiet_end=time(0), backoff_after=1, backoff_factor=0.25)
    history = planned(utc(8))
    # 7 -> floor(1.75) = 1 a day once a single push went unanswered.
    assert run(marketing(utc(18)), history, who(unanswered={"push": 1}), strict) == deferred(
        utc(8, day=1), R_BACKOFF, "backoff:push-3-7"
    )
    assert run(marketing(utc(18)), history, who(unanswered={"push": 1})).status == QUEUED


def test_backoff_leaves_the_cross_channel_cap_alone():
    # Four other-channel sends today: halving the cross-channel 8 would refuse a fifth.
    history = planned(utc(1), channel="sms") + planned(
        utc(2), utc(4), utc(5), channel="wechat", content_class="regular"
    )
    assert run(marketing(utc(9)), history, who(unanswered={"push": 5})).status == QUEUED


def test_backoff_is_named_only_when_it_made_the_difference():
    history = _eight_across_channels()
    backed_off = who(unanswered={"push": 3})
    # Backed off, 3 pushes today refuse a fourth until 00:00 leaves — but the cross-channel
    # cap holds it until then anyway, so back-off is not the reason.
    assert run(marketing(utc(9)), history, backed_off) == deferred(utc(0, day=1), R_CAP, "cap:all-channels-daily")


def test_wechat_regular_backoff_four_to_two():
    regular = planned(utc(10), utc(10, day=1), channel="wechat", content_class="regular")
    send = marketing(utc(10, day=2), "wechat", content_class="regular")
    assert run(send, regular).status == QUEUED
    assert run(send, regular, who(unanswered={"wechat": 3})) == deferred(
        utc(10, day=7), R_BACKOFF, "backoff:wechat-4-1-1-regular"
    )


# --- quiet hours -----------------------------------------------------------------------


def test_quiet_hours_cross_midnight_in_shanghai():
    shanghai = who("Asia/Shanghai")
    assert run(marketing(sh(22, 30)), recipient=shanghai, policy=POLICY) == deferred(
        sh(8, day=1), R_QUIET, "quiet_hours"
    )
    assert sh(8, day=1) == utc(0, day=1)
    assert run(marketing(sh(7, 59)), recipient=shanghai, policy=POLICY).send_after == sh(8)
    assert run(marketing(sh(8)), recipient=shanghai, policy=POLICY).status == QUEUED
    assert run(marketing(sh(21, 59)), recipient=shanghai, policy=POLICY).status == QUEUED
    assert is_quiet(sh(22), "Asia/Shanghai", POLICY)
    assert is_quiet(sh(0), "Asia/Shanghai", POLICY)
    assert not is_quiet(sh(8), "Asia/Shanghai", POLICY)
    assert quiet_end_after(sh(23), "Asia/Shanghai", POLICY) == sh(8, day=1)
    assert quiet_end_after(sh(3), "Asia/Shanghai", POLICY) == sh(8)
    assert quiet_end_after(sh(12), "Asia/Shanghai", POLICY) == sh(12)  # not quiet: itself
    assert quiet_end_after(sh(23), "Asia/Shanghai", POLICY).tzinfo == UTC


def test_quiet_hours_within_one_day_and_none_when_start_equals_end():
    lunch = Policy(caps=default_caps(), quiet_start=time(12), quiet_end=time(14))
    assert run(marketing(utc(12, 30)), policy=lunch) == deferred(utc(14), R_QUIET, "quiet_hours")
    assert not is_quiet(utc(11, 59), "UTC", lunch)
    assert is_quiet(utc(12), "UTC", lunch)
    assert not is_quiet(utc(14), "UTC", lunch)
    assert not is_quiet(utc(23), "UTC", lunch)
    for hour in (0, 3, 8, 12, 22, 23):
        assert not is_quiet(utc(hour), "UTC", NO_QUIET)


def test_quiet_hours_end_at_local_eight_across_dst_in_new_york():
    new_york = who("America/New_York")
    # Spring forward (2024-03-10): 22:00 EST is 03:00 UTC; 08:00 EDT is 12:00 UTC, not 13:00.
    due = datetime(2024, 3, 10, 3, tzinfo=UTC)
    assert run(marketing(due), recipient=new_york, policy=POLICY) == deferred(
        datetime(2024, 3, 10, 12, tzinfo=UTC), R_QUIET, "quiet_hours"
    )
    # Fall back (2024-11-03): 22:30 EDT is 02:30 UTC; 08:00 EST is 13:00 UTC.
    due = datetime(2024, 11, 3, 2, 30, tzinfo=UTC)
    assert run(marketing(due), recipient=new_york, policy=POLICY).send_after == datetime(2024, 11, 3, 13, tzinfo=UTC)
    assert datetime(2024, 11, 3, 13, tzinfo=UTC).astimezone(NY).hour == 8


def test_quiet_end_inside_the_skipped_or_repeated_hour():
    late = Policy(caps=(), quiet_start=time(22), quiet_end=time(2, 30))
    # 02:30 does not exist on 2024-03-10: quiet lasts until the clocks jump (07:00 UTC, 03:00 EDT).
    jump = datetime(2024, 3, 10, 7, tzinfo=UTC)
    assert quiet_end_after(datetime(2024, 3, 10, 4, tzinfo=UTC), "America/New_York", late) == jump
    assert is_quiet(jump - timedelta(microseconds=1), "America/New_York", late)
    assert not is_quiet(jump, "America/New_York", late)
    # 01:30 happens twice on 2024-11-03: first at 05:30 UTC (EDT); from 01:00 EST (06:00 UTC)
    # the wall clock is before 01:30 again, quiet until 01:30 EST (06:30 UTC).
    early = Policy(caps=(), quiet_start=time(22), quiet_end=time(1, 30))
    nov3 = datetime(2024, 11, 3, tzinfo=UTC)
    assert quiet_end_after(nov3 + timedelta(hours=3), "America/New_York", early) == nov3 + timedelta(
        hours=5, minutes=30
    )
    assert not is_quiet(nov3 + timedelta(hours=5, minutes=45), "America/New_York", early)
    assert is_quiet(nov3 + timedelta(hours=6, minutes=15), "America/New_York", early)
    assert quiet_end_after(nov3 + timedelta(hours=6, minutes=15), "America/New_York", early) == nov3 + timedelta(
        hours=6, minutes=30
    )


def test_an_unknown_timezone_falls_back_to_the_policy_default():
    due = sh(22, 30)  # 14:30 UTC: quiet in Shanghai, not in UTC
    assert run(marketing(due), recipient=who("UTC"), policy=POLICY).status == QUEUED
    for tz in ("Mars/Olympus", "", "../etc/passwd", "America"):
        assert run(marketing(due), recipient=who(tz), policy=POLICY).send_after == sh(8, day=1)
        assert is_quiet(due, tz, POLICY)
    london = Policy(caps=(), default_timezone="Europe/London")
    assert not is_quiet(sh(22, 30), "nowhere", london)
    assert is_quiet(utc(22, 30), "nowhere", london)


def test_caps_and_quiet_hours_together():
    shanghai = who("Asia/Shanghai")
    # A push at 20:00 pushes the next to 23:00, which is quiet: 08:00 next day.
    assert run(marketing(sh(21)), planned(sh(20)), shanghai, POLICY) == deferred(sh(8, day=1), R_QUIET, "quiet_hours")
    # A planned push at 07:00 tomorrow: quiet ends 08:00, then the cap says 10:00.
    assert run(marketing(sh(23)), planned(sh(7, day=1)), shanghai, POLICY) == deferred(
        sh(10, day=1), R_CAP, "cap:push-3-7"
    )


# --- refusals, transactional sends, holds ----------------------------------------------


def test_marketing_refusals_in_order():
    everything_off = who(do_not_contact=True, consent={}, unsubscribed=frozenset({"push"}))
    assert run(marketing(utc(10)), recipient=everything_off) == Decision(SUPPRESSED, R_DNC, "do_not_contact", None)
    unsubscribed = who(consent={}, unsubscribed=frozenset({"push"}))
    assert run(marketing(utc(10)), recipient=unsubscribed) == Decision(
        SUPPRESSED, R_UNSUBSCRIBED, "unsubscribe:push", None
    )
    assert run(marketing(utc(10), "sms"), recipient=unsubscribed) == Decision(
        SUPPRESSED, R_NO_CONSENT, "consent:sms", None
    )
    refused = who(consent={"push": False, "sms": True})
    assert run(marketing(utc(10)), recipient=refused).rule == "consent:push"
    assert run(marketing(utc(10), "sms"), recipient=refused).status == QUEUED
    assert run(marketing(utc(10), "sms"), recipient=who(unsubscribed=frozenset({"push"}))).status == QUEUED


def test_transactional_sends_skip_caps_quiet_hours_and_consent():
    crowded = planned(*(utc(h) for h in range(9, 21)))
    nobody = who("Asia/Shanghai", consent={}, unsubscribed=frozenset({"push"}), unanswered={"push": 9})
    due = sh(23)  # quiet
    receipt = Send(channel="push", category=TRANSACTIONAL, due=due)
    assert run(receipt, crowded, nobody, POLICY) == Decision(QUEUED, "", "", due)
    assert run(receipt, crowded, who(do_not_contact=True), POLICY).status == QUEUED
    offer = Send(channel="push", category=TRANSACTIONAL, due=due, marketing_content=True)
    assert run(offer, crowded, nobody, POLICY).status == QUEUED  # only do-not-contact binds it
    assert run(offer, crowded, who(do_not_contact=True), POLICY) == Decision(
        SUPPRESSED, R_DNC, "do_not_contact", None, None
    )
    assert earliest_allowed(send=receipt, recipient=nobody, history=crowded, policy=POLICY) == (due, "", "")


def test_a_hold_suppresses_when_asked_to_or_past_max_delay():
    history = planned(utc(10))
    assert run(marketing(utc(11), on_hold=SUPPRESS), history) == Decision(
        SUPPRESSED, R_CAP, "cap:push-3-7", None, held_until=utc(13)
    )
    assert run(marketing(utc(11), max_delay=timedelta(hours=1)), history) == Decision(
        SUPPRESSED, R_CAP, "cap:push-3-7", None, held_until=utc(13)
    )
    # Exactly max_delay late is still in time.
    assert run(marketing(utc(11), max_delay=timedelta(hours=2)), history) == deferred(utc(13), R_CAP, "cap:push-3-7")
    assert run(marketing(utc(11), on_hold=DEFER), history).status == DEFERRED
    # Nothing holds it: queued whatever on_hold says.
    assert run(marketing(utc(14), on_hold=SUPPRESS, max_delay=timedelta(0)), history).status == QUEUED
    quiet = run(marketing(sh(23), on_hold=SUPPRESS), recipient=who("Asia/Shanghai"), policy=POLICY)
    assert quiet == Decision(SUPPRESSED, R_QUIET, "quiet_hours", None, held_until=sh(8, day=1))


def test_naive_datetimes_and_bad_values_are_refused():
    with pytest.raises(ValueError):
        run(marketing(datetime(2025, 3, 3, 10)))
    with pytest.raises(ValueError):
        run(marketing(utc(10)), [Planned(at=datetime(2025, 3, 3, 9), channel="push")])
    with pytest.raises(ValueError):
        run(Send(channel="push", category=TRANSACTIONAL, due=datetime(2025, 3, 3, 10)))
    with pytest.raises(ValueError):
        run(Send(channel="push", category="newsletter", due=utc(10)))
    with pytest.raises(ValueError):
        run(marketing(utc(10), on_hold="drop"))
    with pytest.raises(ValueError):
        Window(0, 1)
    with pytest.raises(ValueError):
        Window(HOUR, 0)


def test_results_are_in_utc_and_equal_to_local_inputs():
    decision = run(marketing(sh(11)), planned(sh(10)))
    assert decision.send_after == sh(13)
    assert decision.send_after.tzinfo == UTC


def test_default_caps():
    caps = {cap.code: cap for cap in default_caps()}
    assert list(caps) == [
        "push-3-7",
        "sms-2-8",
        "wechat-4-1-1-regular",
        "wechat-4-1-1-in-depth",
        "wechat-4-1-1-interactive",
        "all-channels-daily",
    ]
    assert caps["push-3-7"] == Cap("push-3-7", "push", None, (Window(3 * HOUR, 1), Window(DAY, 7)))
    assert caps["sms-2-8"] == Cap("sms-2-8", "sms", None, (Window(2 * DAY, 1), Window(30 * DAY, 8)))
    assert caps["wechat-4-1-1-regular"].windows == (Window(7 * DAY, 4),)
    assert caps["wechat-4-1-1-in-depth"].content_class == "in_depth"
    assert caps["wechat-4-1-1-interactive"].windows == (Window(7 * DAY, 1),)
    assert caps["all-channels-daily"] == Cap("all-channels-daily", None, None, (Window(DAY, 8),))


def test_violations_names_each_overfull_window_by_its_first_send():
    assert violations(planned(utc(10), utc(13), utc(16)), POLICY) == []
    assert violations(planned(utc(10), utc(12)), POLICY) == [("push-3-7", utc(10))]
    # Also over the daily 7: 8 pushes 2 h apart break both windows of push-3-7 (one entry each start).
    eight = planned(*(utc(2 * i) for i in range(8)))
    found = violations(eight, POLICY)
    assert ("push-3-7", utc(0)) in found
    assert len(found) == 7  # every send but the last has another within 3 h
    assert ("all-channels-daily", utc(0)) not in found  # 8 is allowed across channels
    history = _eight_across_channels() + planned(utc(8), channel="email")
    assert violations(history, POLICY) == [("all-channels-daily", utc(0))]
    # Past and planned sends alike, given in any order and zone.
    assert violations(planned(sh(20), utc(11)), POLICY) == [("push-3-7", utc(11))]


# --- randomized: against a brute force, and against violations -------------------------

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
BASES = (datetime(2024, 3, 9, 12, tzinfo=UTC), datetime(2024, 11, 2, 12, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC))
ZONES = ("Asia/Shanghai", "America/New_York", "UTC", "Europe/London", "Nowhere/Invalid")
# Minutes of the day for quiet-hour ends: some inside New York's skipped/repeated hours.
QUIET_MINUTES = (0, 60, 90, 120, 150, 180, 480, 720, 840, 1260, 1320, 1410)


def _minutes(at):
    return int((at - EPOCH).total_seconds()) // 60


def _random_policy(rng):
    def windows():
        return tuple(
            Window(60 * rng.choice((30, 60, 90, 120, 240)), rng.randint(1, 3)) for _ in range(rng.randint(1, 2))
        )

    start, end = rng.choice(QUIET_MINUTES), rng.choice(QUIET_MINUTES)
    return Policy(
        caps=(
            Cap("p", "push", None, windows()),
            Cap("s", "sms", None, windows()),
            Cap("px", "push", "x", windows()),
            Cap("all", None, None, (Window(60 * rng.choice((120, 240, 360)), rng.randint(2, 5)),)),
        ),
        quiet_start=time(start // 60, start % 60),
        quiet_end=time(end // 60, end % 60),
        backoff_after=rng.randint(1, 3),
        backoff_factor=rng.choice((0.5, 0.34, 0.75)),
    )


def _random_send(rng, due):
    return marketing(due, rng.choice(("push", "sms")), content_class=rng.choice(("", "x")))


def _random_case(rng, dst_night=False):
    policy = _random_policy(rng)
    due = rng.choice(BASES) + timedelta(minutes=rng.randint(0, 36 * 60))
    tz = rng.choice(ZONES)
    if dst_night:
        # New York's clock changes (07:00 / 06:00 UTC) with quiet hours ending around them.
        end = rng.choice((60, 90, 120, 150, 180))
        policy = replace(policy, quiet_start=time(rng.randint(18, 23)), quiet_end=time(end // 60, end % 60))
        night = rng.choice((datetime(2024, 3, 10, 2, tzinfo=UTC), datetime(2024, 11, 3, 2, tzinfo=UTC)))
        due, tz = night + timedelta(minutes=rng.randint(0, 6 * 60)), "America/New_York"
    history = [
        Planned(due + timedelta(minutes=rng.randint(-300, 300)), rng.choice(("push", "sms")), rng.choice(("", "x")))
        for _ in range(rng.randint(0, 8))
    ]
    recipient = who(tz, unanswered={"push": rng.randint(0, 3), "sms": rng.randint(0, 3)})
    return _random_send(rng, due), recipient, history, policy


def _brute_quiet(minute, recipient, policy):
    try:
        zone = ZoneInfo(recipient.timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo(policy.default_timezone)
    local = (EPOCH + timedelta(minutes=minute)).astimezone(zone)
    now = local.hour * 60 + local.minute
    start = policy.quiet_start.hour * 60 + policy.quiet_start.minute
    end = policy.quiet_end.hour * 60 + policy.quiet_end.minute
    if start == end:
        return False
    if start < end:
        return start <= now < end
    return now >= start or now < end


def _brute_windows(send, recipient, history, policy, backoff):
    """(points in minutes, S in minutes, L in force, cap code) for every applicable window."""
    backed_off = backoff and recipient.unanswered.get(send.channel, 0) >= policy.backoff_after
    out = []
    for cap in policy.caps:
        if cap.channel not in (None, send.channel) or cap.content_class not in (None, send.content_class):
            continue
        points = [
            _minutes(p.at)
            for p in history
            if cap.channel in (None, p.channel) and cap.content_class in (None, p.content_class)
        ]
        for window in cap.windows:
            limit = window.limit
            if backed_off and cap.channel == send.channel:
                limit = max(1, math.floor(limit * policy.backoff_factor))
            out.append((points, window.seconds // 60, limit, cap.code))
    return out


def _brute_allows(minute, points, length, limit):
    # Every integer-minute window start a in [t - S, t): points in (a, a + S], plus t itself.
    # Only points less than S away can share a window with t (a shortcut when few are).
    near = [q for q in points if minute - length < q < minute + length]
    if len(near) + 1 <= limit:
        return True
    return all(sum(a < q <= a + length for q in near) + 1 <= limit for a in range(minute - length, minute))


def _brute_earliest(send, recipient, history, policy, backoff=True):
    windows = _brute_windows(send, recipient, history, policy, backoff)
    start = _minutes(send.due)
    for minute in range(start, start + 4 * 24 * 60):
        if _brute_quiet(minute, recipient, policy):
            continue
        if all(_brute_allows(minute, points, length, limit) for points, length, limit, _ in windows):
            return EPOCH + timedelta(minutes=minute)
    raise AssertionError("the brute force found no instant within four days")


@pytest.mark.parametrize("seed", range(420))
def test_earliest_allowed_matches_a_brute_force(seed):
    rng = random.Random(seed)
    send, recipient, history, policy = _random_case(rng, dst_night=seed >= 300)
    at, reason, rule = earliest_allowed(send=send, recipient=recipient, history=history, policy=policy)
    assert at == _brute_earliest(send, recipient, history, policy), (send, recipient, history, policy)

    minute = _minutes(at)
    if at == send.due:
        assert (reason, rule) == ("", "")
    elif reason == R_QUIET:
        assert rule == "quiet_hours"
        assert _brute_quiet(minute - 1, recipient, policy)
    else:
        # The named cap, with the limits in force, refuses the minute before.
        assert reason in (R_CAP, R_BACKOFF)
        code = rule.split(":", 1)[1]
        assert rule == f"{reason}:{code}"
        assert any(
            not _brute_allows(minute - 1, points, length, limit)
            for points, length, limit, window_code in _brute_windows(send, recipient, history, policy, True)
            if window_code == code
        )
        if reason == R_BACKOFF:
            assert _brute_earliest(send, recipient, history, policy, backoff=False) < at


@pytest.mark.parametrize("seed", range(100))
def test_decisions_never_overfill_a_window(seed):
    rng = random.Random(10_000 + seed)
    policy = _random_policy(rng)
    recipient = who(rng.choice(ZONES), unanswered={"push": rng.randint(0, 4)})
    base = rng.choice(BASES)
    history = []
    for _ in range(25):
        # Dues in any order, so later decisions see planned sends in their future too.
        due = base + timedelta(minutes=rng.randint(0, 24 * 60), seconds=rng.randint(0, 59))
        send = _random_send(rng, due)
        decision = decide(send=send, recipient=recipient, history=history, policy=policy)
        assert decision.status in (QUEUED, DEFERRED)
        assert decision.send_after >= due
        assert not is_quiet(decision.send_after, recipient.timezone, policy)
        if decision.status == QUEUED:
            assert decision.send_after == due
        history.append(Planned(decision.send_after, send.channel, send.content_class))
        assert violations(history, policy) == []

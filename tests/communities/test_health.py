"""Group health: the set-based roll-up on a hand-built dataset (exact figures, a member
who leaves and rejoins, messages at the edges of the operators' day), its idempotence
and query bound, bad ranges, the jobs, and the health pages with their permissions."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from communities.models import (
    Activity,
    ActivitySignup,
    CheckIn,
    CommunityGroup,
    GroupHealthDay,
    GroupMessage,
)
from communities.services import groups as group_services
from communities.services import health
from communities.tasks.health import health_rollup_nightly_task, health_rollup_range_task
from core.errors import ApplicationError
from core.models import JobRun
from tests.users.factories import CustomerFactory

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
D0, D1, D2 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)


def at(day: date, hour: int = 12, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    """A time on an operator (Shanghai) day."""
    return datetime(day.year, day.month, day.day, hour, minute, second, micro, tzinfo=SH)


@pytest.fixture
def managers(make_user):
    return make_user("community_manager", "mgr-one"), make_user("community_manager", "mgr-two")


def _group(owner, code: str) -> CommunityGroup:
    return group_services.group_save(group=CommunityGroup(code=code, name=f"群 {code}", owner=owner), actor=owner)


def _msg(group, customer, sent_at, n=[0]):  # noqa: B006 - a counter for unique external ids
    n[0] += 1
    return GroupMessage.objects.create(group=group, customer=customer, sent_at=sent_at, external_id=f"m{n[0]}")


@pytest.fixture
def dataset(managers):
    """Group A with six people over D1–D2, an empty group B, and group C with one join."""
    owner = managers[0]
    a, b, c = _group(owner, "a"), _group(owner, "b"), _group(owner, "c")
    p = {i: CustomerFactory() for i in range(1, 8)}
    join, leave = group_services.member_join, group_services.member_leave
    before = at(date(2026, 10, 1))
    join(group=a, customer=p[1], joined_at=before)  # stays
    join(group=a, customer=p[2], joined_at=before)  # leaves on D1
    join(group=a, customer=p[6], joined_at=before)  # stays
    leave(group=a, customer=p[2], left_at=at(D1, 10))
    join(group=a, customer=p[3], joined_at=at(D1, 9))  # joins and leaves on D1, rejoins on D2
    leave(group=a, customer=p[3], left_at=at(D1, 18))
    join(group=a, customer=p[3], joined_at=at(D2, 8))
    join(group=a, customer=p[4], joined_at=at(D2, 23, 59, 59))  # the last second of D2
    join(group=a, customer=p[5], joined_at=at(D1, 0, 0, 0))  # the first instant of D1
    join(group=a, customer=p[7], joined_at=before)  # left before the range: never counted
    leave(group=a, customer=p[7], left_at=at(D0, 23, 59, 59))
    join(group=c, customer=p[1], joined_at=at(D1, 20))

    _msg(a, p[1], at(D0, 23, 59, 59, 999999))  # the day before: outside
    _msg(a, p[1], at(D1, 0, 0, 0))  # the first instant of D1
    _msg(a, p[1], at(D1, 12))
    _msg(a, None, at(D1, 13))  # an unknown sender: a message, not an active member
    _msg(a, p[5], at(D1, 23, 59, 59, 999999))  # the last instant of D1
    _msg(a, p[3], at(D2, 0, 0, 0))
    _msg(a, p[3], at(date(2026, 11, 4), 0, 0, 0))  # the day after: outside

    for person, day in [(p[1], D1), (p[6], D1), (p[1], D2)]:
        CheckIn.objects.create(group=a, customer=person, day=day, at=at(day, 9))
    CheckIn.objects.create(group=c, customer=p[1], day=D0, at=at(D0, 9))  # outside the range
    run = Activity.objects.create(group=a, code="run", title="夜跑", starts_at=at(D2, 19))
    ActivitySignup.objects.create(activity=run, customer=p[1], at=at(D1, 10))
    ActivitySignup.objects.create(activity=run, customer=p[5], at=at(D2, 0, 30))  # 16:30 UTC on D1
    ActivitySignup.objects.create(activity=run, customer=p[4], at=at(D2, 23, 59, 59))
    return {"a": a, "b": b, "c": c, "people": p}


def _row(group, day) -> dict:
    row = GroupHealthDay.objects.get(group=group, day=day)
    return {f: getattr(row, f) for f in health._COUNTS}


def test_the_rollup_computes_each_groups_day_exactly(dataset):
    written = health.health_rollup(D1, D2)
    assert written == 6  # three groups x two days, quiet days included
    a = dataset["a"]
    assert _row(a, D1) == {
        "members": 3,  # p1, p6 and p5 (joined at 00:00); p2 and p3 left during the day
        "messages": 4,
        "active_members": 2,
        "joins": 2,
        "leaves": 2,
        "leave_rate": pytest.approx(2 / 3),  # 2 leaves of the 3 at the start (p1, p2, p6)
        "checkins": 2,
        "checkin_rate": pytest.approx(2 / 3),
        "activity_signups": 1,
        "activity_rate": pytest.approx(1 / 3),
    }
    assert _row(a, D2) == {
        "members": 5,  # p3 is back (a second span) and p4 joined in the last second
        "messages": 1,
        "active_members": 1,
        "joins": 2,
        "leaves": 0,
        "leave_rate": 0.0,
        "checkins": 1,
        "checkin_rate": pytest.approx(0.2),
        "activity_signups": 2,
        "activity_rate": pytest.approx(0.4),
    }
    zeros = dict.fromkeys(health._COUNTS, 0)
    assert _row(dataset["b"], D1) == zeros and _row(dataset["b"], D2) == zeros
    assert _row(dataset["c"], D1) == {**zeros, "members": 1, "joins": 1}
    assert _row(dataset["c"], D2) == {**zeros, "members": 1}


def test_a_rerun_rewrites_the_same_rows_and_picks_up_new_data(dataset):
    health.health_rollup(D1, D2)
    first = {(r.group_id, r.day): r.pk for r in GroupHealthDay.objects.all()}
    before = _row(dataset["a"], D1)
    assert health.health_rollup(D1, D2) == 6
    assert {(r.group_id, r.day): r.pk for r in GroupHealthDay.objects.all()} == first
    assert _row(dataset["a"], D1) == before
    _msg(dataset["a"], dataset["people"][6], at(D1, 15))
    health.health_rollup(D1, D1)
    assert _row(dataset["a"], D1)["messages"] == 5
    assert _row(dataset["a"], D1)["active_members"] == 3
    assert GroupHealthDay.objects.count() == 6


def test_the_rollup_can_be_limited_to_some_groups(dataset):
    assert health.health_rollup(D1, D2, group_ids=[dataset["a"].pk]) == 2
    assert set(GroupHealthDay.objects.values_list("group_id", flat=True)) == {dataset["a"].pk}
    assert _row(dataset["a"], D2)["members"] == 5


def test_the_rollups_query_count_does_not_grow_with_groups_or_days(dataset, managers):
    with CaptureQueriesContext(connection) as small:
        health.health_rollup(D1, D1)
    for i in range(20):
        group = _group(managers[0], f"more-{i}")
        _msg(group, None, at(D1, 8))
    with CaptureQueriesContext(connection) as large:
        assert health.health_rollup(D1, D2 + timedelta(days=20)) == 23 * 22
    assert len(large) == len(small) <= 3
    assert GroupHealthDay.objects.get(group__code="more-7", day=D1).messages == 1


@pytest.mark.parametrize(
    ("day_from", "day_to", "detail"),
    [
        (D2, D1, "day_from"),  # reversed
        (D1 - timedelta(days=366), D1, "day_to"),  # 367 days
        (date.today() - timedelta(days=1), date.today() + timedelta(days=2), "day_to"),  # the future
    ],
)
def test_bad_ranges_are_refused_and_write_nothing(dataset, day_from, day_to, detail):
    with pytest.raises(ApplicationError) as exc:
        health.health_rollup(day_from, day_to)
    assert exc.value.code == "invalid_range"
    assert detail in exc.value.details
    assert GroupHealthDay.objects.count() == 0


def test_a_full_year_is_accepted():
    assert health.health_range_check(D1 - timedelta(days=365), D1) == (D1 - timedelta(days=365), D1)


def test_the_nightly_job_rolls_up_yesterday_and_records_its_run(dataset):
    health_rollup_nightly_task()
    yesterday = health.operator_today() - timedelta(days=1)
    run = JobRun.objects.get(job="communities.health_rollup_nightly")
    assert run.status == JobRun.Status.SUCCEEDED
    assert run.counts["rows"] == 3 and run.counts["day"] == yesterday.isoformat()
    assert GroupHealthDay.objects.filter(day=yesterday).count() == 3
    assert GroupHealthDay.objects.get(group=dataset["a"], day=yesterday).members == 5


def test_the_range_job_records_a_refused_range_as_failed(dataset):
    with pytest.raises(ApplicationError):
        health_rollup_range_task(D2.isoformat(), D1.isoformat())
    run = JobRun.objects.get(job="communities.health_rollup_range")
    assert run.status == JobRun.Status.FAILED and "starts after it ends" in run.error
    health_rollup_range_task(D1.isoformat(), D2.isoformat(), [dataset["a"].pk])
    assert GroupHealthDay.objects.filter(group=dataset["a"]).count() == 2

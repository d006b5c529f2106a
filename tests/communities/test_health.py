"""Group health: the set-based roll-up on a hand-built dataset (exact figures, a member
who leaves and rejoins, messages at the edges of the operators' day), its idempotence
and query bound, bad ranges, the jobs, and the health pages with their permissions."""

import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

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
    assert run.status == JobRun.Status.FAILED and "2026-11-03 > 2026-11-02" in run.error
    health_rollup_range_task(D1.isoformat(), D2.isoformat(), [dataset["a"].pk])
    assert GroupHealthDay.objects.filter(group=dataset["a"]).count() == 2


# --- pages ------------------------------------------------------------------------------


@pytest.fixture
def rolled(dataset):
    """The dataset rolled up on days inside the default 30-day period (shifted to end
    yesterday), so the pages have figures."""
    end = health.operator_today() - timedelta(days=1)
    health.health_rollup(D1, D2)
    shift = end - D2
    for row in GroupHealthDay.objects.all():
        row.day = row.day + shift
        row.save(update_fields=["day"])
    return {**dataset, "d1": D1 + shift, "d2": end}


def test_the_group_page_draws_trends_and_the_numbers(client, managers, rolled):
    client.force_login(managers[0])
    url = reverse("communities:group-health", args=[rolled["a"].pk])
    response = client.get(f"{url}?days=7")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-chart="activity"' in body and 'data-chart="rates"' in body and "<polyline" in body
    assert "http://" not in body.split('data-chart="activity"')[1].split("</svg>")[0]  # nothing fetched elsewhere
    series = response.context["series"]
    assert len(series) == 7 and series[-1]["day"] == rolled["d2"]
    assert (series[-1]["members"], series[-2]["leaves"]) == (5, 2)
    assert sum(1 for r in series if r["missing"]) == 5
    assert f'data-day="{rolled["d1"].isoformat()}"' in body and "66.7%" in body  # the D1 leave rate
    assert len(client.get(f"{url}?days=90").context["series"]) == 90
    assert len(client.get(f"{url}?days=13").context["series"]) == 30  # not a period: the default


def test_the_comparison_sorts_by_leave_rate_and_activity(client, managers, rolled):
    client.force_login(managers[0])
    url = reverse("communities:health")
    rows = client.get(f"{url}?sort=leave_rate&dir=desc").context["rows"]
    assert [r["group"].code for r in rows] == ["a", "b", "c"]  # 2 leaves of 3; then 0 and 0
    a = rows[0]
    assert (a["members"], a["messages"], a["joins"], a["leaves"]) == (5, 5, 4, 2)
    assert a["leave_rate"] == pytest.approx(2 / 3)
    rows = client.get(f"{url}?sort=activity_rate&dir=asc").context["rows"]
    assert rows[-1]["group"].code == "a"
    rows = client.get(f"{url}?sort=members&dir=desc").context["rows"]
    assert [r["group"].code for r in rows] == ["a", "c", "b"]
    assert client.get(f"{url}?sort=drop-table").context["sort"] == "leave_rate"


def test_a_second_manager_sees_nothing_of_the_first_ones_health(client, managers, rolled):
    client.force_login(managers[1])
    a = rolled["a"]
    assert client.get(reverse("communities:group-health", args=[a.pk])).status_code == 404
    response = client.post(
        reverse("communities:health-rollup", args=[a.pk]), {"day_from": D1.isoformat(), "day_to": D2.isoformat()}
    )
    assert response.status_code == 404
    index = client.get(reverse("communities:health"))
    assert index.status_code == 200 and index.context["rows"] == []
    assert "群 a" not in index.content.decode()


def test_the_on_demand_rollup_needs_the_manage_right(client, managers, rolled, make_user):
    helper = make_user("group_admin", "helper")
    group_services.staff_grant(group=rolled["a"], user=helper, actor=managers[0], can_post=True)
    client.force_login(helper)
    page = client.get(reverse("communities:group-health", args=[rolled["a"].pk]))
    assert page.status_code == 200 and page.context["rollup_form"] is None
    url = reverse("communities:health-rollup", args=[rolled["a"].pk])
    assert client.post(url, {"day_from": D1.isoformat(), "day_to": D2.isoformat()}).status_code == 403


def test_the_on_demand_rollup_queues_the_range_for_the_group(
    client, managers, rolled, django_capture_on_commit_callbacks
):
    client.force_login(managers[0])
    url = reverse("communities:health-rollup", args=[rolled["a"].pk])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(url, {"day_from": D1.isoformat(), "day_to": D2.isoformat()})
    assert response.status_code == 302
    assert len(callbacks) == 1


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ({"day_from": D2.isoformat(), "day_to": D1.isoformat()}, 400),  # reversed
        ({"day_from": "2024-01-01", "day_to": "2025-06-01"}, 400),  # > 366 days
        ({"day_from": D1.isoformat(), "day_to": "2099-01-01"}, 400),  # the future
        ({"day_from": "yesterday", "day_to": ""}, 400),  # not dates
    ],
)
def test_a_bad_range_from_the_page_is_refused_and_queues_nothing(
    client, managers, rolled, data, status, django_capture_on_commit_callbacks
):
    client.force_login(managers[0])
    url = reverse("communities:health-rollup", args=[rolled["a"].pk])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(url, data)
    assert response.status_code == status
    assert response.context["rollup_form"].errors
    assert callbacks == []


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_range_rollup_runs_in_a_real_worker(worker_queue, make_user):
    owner = make_user("community_manager", "mgr-w")
    group = _group(owner, "w")
    customer = CustomerFactory()
    group_services.member_join(group=group, customer=customer, joined_at=at(D0, 8))
    _msg(group, customer, at(D1, 9))
    health_rollup_range_task.delay(D1.isoformat(), D2.isoformat(), [group.pk])
    deadline = time.monotonic() + 90
    while (
        time.monotonic() < deadline
        and not JobRun.objects.filter(job="communities.health_rollup_range", finished_at__isnull=False).exists()
    ):
        time.sleep(0.5)
    run = JobRun.objects.get(job="communities.health_rollup_range")
    assert run.status == JobRun.Status.SUCCEEDED and run.counts["rows"] == 2
    assert GroupHealthDay.objects.get(group=group, day=D1).messages == 1
    assert GroupHealthDay.objects.get(group=group, day=D2).members == 1


def test_the_nightly_job_is_scheduled_labelled_and_never_runs_twice_at_once(dataset):
    from django.conf import settings
    from django.core.cache import cache

    from dashboards.views import JOB_LABELS

    entry = settings.CELERY_BEAT_SCHEDULE["communities-health-rollup-nightly"]
    assert entry["task"] == "communities.health_rollup_nightly" and entry["options"]["expires"] > 0
    assert "communities.health_rollup_nightly" in JOB_LABELS and "communities.health_rollup_range" in JOB_LABELS
    cache.add("job-lock:communities.health_rollup_nightly", "1", timeout=60)  # a run in progress
    try:
        health_rollup_nightly_task()
    finally:
        cache.delete("job-lock:communities.health_rollup_nightly")
    assert JobRun.objects.get(job="communities.health_rollup_nightly").status == JobRun.Status.SKIPPED
    assert GroupHealthDay.objects.count() == 0

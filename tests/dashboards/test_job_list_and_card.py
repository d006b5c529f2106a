"""The dashboard tells the truth: the job list has the segment recomputes and the
points backfill next to the periodic jobs, an incremental recompute's progress is
counted in phases (it has no chunks), and today's partial day is marked on the chart."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from core.models import JobRun
from dashboards import selectors
from segments.models import RuleSet, SegmentRun
from tests.dashboards.test_selectors import NOW, dataset  # noqa: F401  (fixture)
from tests.dashboards.test_views import pinned_now  # noqa: F401  (fixture)
from tests.users.factories import OrderFactory

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def _rule_set():
    return RuleSet.objects.filter(is_active=True).order_by("-version").first() or RuleSet.objects.create()


def _run(**fields):
    """A SegmentRun with its times as given (started_at is set on insert)."""
    started = fields.pop("started_at")
    run = SegmentRun.objects.create(as_of=started, rule_set=_rule_set(), **fields)
    SegmentRun.objects.filter(pk=run.pk).update(started_at=started)
    return SegmentRun.objects.get(pk=run.pk)


def _jobs(html: str) -> str:
    return html.split('data-table="jobs"')[1].split("</table>")[0]


def _card(html: str) -> str:
    return html.split('data-card="segments"')[1].split("</section>")[0]


def test_the_job_list_shows_segment_recomputes_and_the_points_backfill(client, make_user, db):
    now = timezone.now()
    full = _run(
        status=SegmentRun.Status.PUBLISHED,
        started_at=now - timedelta(hours=5),
        finished_at=now - timedelta(hours=5) + timedelta(seconds=42),
        chunks_total=2,
        chunks_done=2,
    )
    incremental = _run(
        kind=SegmentRun.Kind.INCREMENTAL,
        status=SegmentRun.Status.APPLIED,
        started_at=now - timedelta(hours=1),
        finished_at=now - timedelta(hours=1) + timedelta(seconds=3),
    )
    JobRun.objects.create(
        job="incentives.points_expire",
        status="succeeded",
        started_at=now - timedelta(hours=3),
        finished_at=now - timedelta(hours=3) + timedelta(seconds=1),
    )
    OrderFactory(occurred_at=now - timedelta(days=2))
    call_command("apply_incentive_rules", stdout=StringIO())  # the backfill bin/demo runs
    backfill = JobRun.objects.get(job="incentives.rules_backfill")
    assert backfill.status == JobRun.Status.SUCCEEDED and backfill.counts["orders"] == 1

    rows = selectors.job_list_recent(limit=10)
    assert [r["job"] for r in rows] == [
        "incentives.rules_backfill",
        "segments.recompute_incremental",
        "incentives.points_expire",
        "segments.recompute_full",
    ]
    assert rows[3]["run"] == full.pk and rows[3]["duration_seconds"] == 42 and rows[3]["badge"] == "succeeded"
    assert rows[1]["run"] == incremental.pk
    assert [r["job"] for r in selectors.job_list_recent(limit=2)] == [
        "incentives.rules_backfill",
        "segments.recompute_incremental",
    ]

    client.force_login(make_user("operator"))
    jobs = _jobs(client.get("/", **EN).content.decode())
    assert "No job has run yet." not in jobs
    order = [jobs.index(s) for s in ("Points backfill", "Segment recompute (incremental)", "Points expiry")]
    assert order == sorted(order)
    assert "Segment recompute (full)" in jobs and f"#{full.pk}" in jobs and "42.0 s" in jobs
    zh = _jobs(client.get("/").content.decode())
    assert "积分补发" in zh and "分层重算（增量）" in zh and "还没有任务运行过" not in zh


def test_an_incremental_run_shows_phases_not_chunks(client, make_user, db):
    client.force_login(make_user("operator"))
    run = _run(
        kind=SegmentRun.Kind.INCREMENTAL,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
        phases={"aggregate": 0.4, "model_predict": 0.2},
    )
    card = _card(client.get("/", **EN).content.decode())
    assert "2 of 4 phases done" in card and "chunks" not in card
    assert 'aria-valuenow="50"' in card and "data-live" in card.split(">")[0]
    assert 'data-phase="aggregate"' in card and "Aggregate orders" in card
    SegmentRun.objects.filter(pk=run.pk).update(
        status=SegmentRun.Status.APPLIED,
        finished_at=timezone.now(),
        phases={"aggregate": 0.4, "model_predict": 0.2, "patch": 0.1, "custom_segments": 0.3},
    )
    card = _card(client.get("/", **EN).content.decode())
    assert "4 of 4 phases done" in card and "0 of 0" not in card and 'aria-valuenow="100"' in card
    assert "data-live" not in card.split(">")[0]
    zh = _card(client.get("/").content.decode())
    assert "4 / 4 个阶段已完成" in zh or "已完成 4 / 4 个阶段" in zh


def test_a_full_run_still_counts_chunks(client, make_user, db):
    client.force_login(make_user("operator"))
    _run(started_at=timezone.now(), heartbeat_at=timezone.now(), chunks_total=4, chunks_done=3)
    card = _card(client.get("/", **EN).content.decode())
    assert "3 of 4 chunks done" in card and "phases done" not in card and 'aria-valuenow="75"' in card


def test_the_segments_card_alone_is_served_for_the_refresh(client, make_user, db):
    client.force_login(make_user("operator"))
    _run(started_at=timezone.now(), heartbeat_at=timezone.now(), chunks_total=4, chunks_done=1)
    response = client.get("/dashboard/segments-card", **EN)
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    html = response.content.decode()
    assert html.strip().startswith("<section") and "<html" not in html
    assert "1 of 4 chunks done" in html and "data-live" in html.split(">")[0]
    client.logout()
    assert client.get("/dashboard/segments-card").status_code == 302  # to the sign-in page


def test_a_stale_running_run_is_not_polled(client, make_user, db):
    client.force_login(make_user("operator"))
    old = timezone.now() - timedelta(days=2)
    _run(started_at=old, heartbeat_at=old, chunks_total=4, chunks_done=1)
    card = _card(client.get("/", **EN).content.decode())
    assert "data-live" not in card.split(">")[0]


@pytest.mark.usefixtures("pinned_now")
def test_todays_partial_day_is_marked_on_the_chart(client, make_user, dataset):  # noqa: F811
    client.force_login(make_user("operator"))
    html = client.get("/", **EN).content.decode()
    svg = html.split('<svg class="chart"')[1].split("</svg>")[0]
    bars = re.findall(r"<rect [^>]*>", svg)
    assert len(bars) == 30
    assert [("data-partial" in b) for b in bars] == [False] * 29 + [True]
    solid, dashed = re.findall(r'<polyline class="line[^"]*" points="([^"]*)"', svg)
    assert len(solid.split()) == 29  # the complete days
    assert dashed.split()[0] == solid.split()[-1] and len(dashed.split()) == 2  # yesterday → today, dashed
    assert 'class="line line-partial"' in svg and "stroke-dasharray" in svg
    assert "today so far" in svg and "today so far (the day is not over)" in html
    assert "今天（截至目前）" in client.get("/").content.decode()

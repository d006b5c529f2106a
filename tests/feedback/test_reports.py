"""The queue's reports against hand-computed figures: the share of tickets that met each
SLA target per team, priority, category and ISO week (operator days and weeks in
Asia/Shanghai), median and p90 response and resolution times (the window-function
formulation, and PostgreSQL's percentile_cont agreeing with it), the backlog by age, the
report page (permission, bad dates, CSV and Excel exports) and the dashboard's card."""

import io
import re
from datetime import UTC, date, datetime, timedelta

import openpyxl
import pytest
from django.db import connection
from django.urls import reverse
from django.utils import translation

from feedback import views_reports
from feedback.models import CsatResponse, NpsResponse, NpsSurvey, SlaTarget, Status, Team, Ticket
from feedback.selectors import reports
from tests.users.factories import CustomerFactory

MET, BREACHED, RUNNING = SlaTarget.State.MET, SlaTarget.State.BREACHED, SlaTarget.State.RUNNING
FR, RES = SlaTarget.Kind.FIRST_RESPONSE, SlaTarget.Kind.RESOLUTION
# Tuesday 2026-03-03 10:00 in Shanghai.
BASE = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
MARCH = {"start": date(2026, 3, 1), "end": date(2026, 3, 31)}


def ticket(*, created_at=BASE, team="operations", targets=(), responded=None, resolved=None, **kw) -> Ticket:
    """A ticket row as the clock would have left it: ``targets`` is ``[(kind, state), ...]``
    (or ``(kind, state, breached_at)``); ``responded``/``resolved`` are seconds after creation."""
    fields = {"category": "question", "priority": "normal", "subject": "s", "body": "b", **kw}
    t = Ticket.objects.create(
        team=Team.objects.get(code=team) if team else None,
        created_at=created_at,
        updated_at=created_at,
        first_responded_at=created_at + timedelta(seconds=responded) if responded is not None else None,
        resolved_at=created_at + timedelta(seconds=resolved) if resolved is not None else None,
        **fields,
    )
    for kind, state, *breached in targets:
        SlaTarget.objects.create(
            ticket=t,
            kind=kind,
            target_seconds=3600,
            started_at=created_at,
            state=state,
            stopped_at=created_at + timedelta(minutes=30) if state in (MET, BREACHED) else None,
            breached_at=breached[0] if breached else (created_at + timedelta(hours=1) if state == BREACHED else None),
        )
    return t


def by_key(rows):
    return {r["key"]: r for r in rows}


@pytest.mark.django_db
class TestSlaShare:
    def test_four_tickets_three_met_is_75_percent_and_each_target_apart(self):
        ticket(targets=[(FR, MET), (RES, MET)])
        ticket(targets=[(FR, MET), (RES, BREACHED)])
        ticket(targets=[(FR, MET), (RES, MET)])
        ticket(targets=[(FR, BREACHED), (RES, RUNNING)])
        row = by_key(reports.sla_share(**MARCH, by="team"))["operations"]
        assert row["tickets"] == 4
        assert row[FR] == {"met": 3, "breached": 1, "pending": 0, "share": 0.75}
        # 2 met, 1 breached, 1 still running (pending, not in the share): 2 / 3
        assert row[RES] == {"met": 2, "breached": 1, "pending": 1, "share": pytest.approx(2 / 3)}

    def test_a_running_target_the_sweep_marked_breached_counts_as_breached(self):
        ticket(targets=[(FR, RUNNING, BASE + timedelta(hours=1))])
        ticket(targets=[(FR, MET)])
        row = by_key(reports.sla_share(**MARCH, by="team"))["operations"]
        assert row[FR] == {"met": 1, "breached": 1, "pending": 0, "share": 0.5}

    def test_grouped_by_team_priority_and_category(self):
        ticket(team="tech", priority="crisis", category="complaint", targets=[(FR, MET)])
        ticket(team="tech", priority="crisis", category="complaint", targets=[(FR, BREACHED)])
        ticket(team="product", priority="low", category="suggestion", targets=[(FR, MET)])
        ticket(team=None, priority="low", category="question", targets=[])
        teams = by_key(reports.sla_share(**MARCH, by="team"))
        assert {k: (r["tickets"], r[FR]["share"]) for k, r in teams.items()} == {
            "tech": (2, 0.5),
            "product": (1, 1.0),
            None: (1, None),  # no target decided: no share, never a misleading 0
        }
        with translation.override("en"):
            assert reports.sla_share(**MARCH, by="team")[-1]["label"] == "(no team)"
        priorities = reports.sla_share(**MARCH, by="priority")
        assert [r["key"] for r in priorities] == ["crisis", "low"]  # crisis first
        assert [(r["tickets"], r[FR]["met"]) for r in priorities] == [(2, 1), (2, 1)]
        categories = by_key(reports.sla_share(**MARCH, by="category"))
        assert {k: r["tickets"] for k, r in categories.items()} == {"complaint": 2, "suggestion": 1, "question": 1}

    def test_weeks_and_days_are_the_operators_in_shanghai(self):
        # Sunday 2026-03-08 23:30 in Shanghai is 15:30 UTC: ISO week 10.
        ticket(created_at=datetime(2026, 3, 8, 15, 30, tzinfo=UTC), targets=[(FR, MET)])
        # Monday 2026-03-09 00:30 in Shanghai is still Sunday in UTC: ISO week 11.
        ticket(created_at=datetime(2026, 3, 8, 16, 30, tzinfo=UTC), targets=[(FR, BREACHED)])
        ticket(created_at=datetime(2026, 3, 10, 4, 0, tzinfo=UTC), targets=[(FR, MET)])
        weeks = reports.sla_share(start=date(2026, 3, 2), end=date(2026, 3, 15), by="week")
        assert [(r["label"], r["key"], r["tickets"], r[FR]["share"]) for r in weeks] == [
            ("2026-W10", date(2026, 3, 2), 1, 1.0),
            ("2026-W11", date(2026, 3, 9), 2, 0.5),
        ]

    def test_the_period_is_operator_days_both_included(self):
        ticket(created_at=datetime(2026, 2, 28, 15, 50, tzinfo=UTC))  # 2026-02-28 23:50 in Shanghai: out
        ticket(created_at=datetime(2026, 2, 28, 16, 10, tzinfo=UTC))  # 2026-03-01 00:10: in
        ticket(created_at=datetime(2026, 3, 31, 15, 59, tzinfo=UTC))  # 2026-03-31 23:59: in
        ticket(created_at=datetime(2026, 3, 31, 16, 0, tzinfo=UTC))  # 2026-04-01 00:00: out
        assert by_key(reports.sla_share(**MARCH, by="team"))["operations"]["tickets"] == 2

    def test_merged_duplicates_are_left_out(self):
        primary = ticket(targets=[(FR, MET)])
        ticket(targets=[(FR, MET)], merged_into=primary, status=Status.CLOSED)
        assert by_key(reports.sla_share(**MARCH, by="team"))["operations"]["tickets"] == 1

    def test_one_query_per_table(self, django_assert_num_queries):
        for _ in range(3):
            ticket(targets=[(FR, MET), (RES, BREACHED)])
        for by in reports.GROUPINGS:
            with django_assert_num_queries(1):
                reports.sla_share(**MARCH, by=by)

    def test_total_row(self):
        ticket(team="tech", targets=[(FR, MET)])
        ticket(team="product", targets=[(FR, BREACHED), (RES, MET)])
        total = reports.sla_share_total(reports.sla_share(**MARCH, by="team"))
        assert total["tickets"] == 2
        assert total[FR] == {"met": 1, "breached": 1, "pending": 0, "share": 0.5}
        assert total[RES]["share"] == 1.0


# First-response durations (seconds), hand-computed percentiles (linear interpolation
# between closest ranks, as percentile_cont):
#   operations, n=10: median = (300 + 600) / 2 = 450; p90 at 0.9·9 = 8.1 → 1800 + 0.1·1800 = 1980
#   tech, n=3: median = 200; p90 at 0.9·2 = 1.8 → 200 + 0.8·200 = 360
#   all 13: median = the 7th = 300; p90 at 0.9·12 = 10.8 → 1200 + 0.8·600 = 1680
OPS_FR = [600, 60, 1800, 120, 3600, 180, 1200, 240, 900, 300]
TECH_FR = [400, 100, 200]


@pytest.fixture
def durations():
    for seconds in OPS_FR:
        ticket(team="operations", responded=seconds)
    for seconds in TECH_FR:
        ticket(team="tech", responded=seconds, resolved=seconds * 10)
    ticket(team="tech")  # not answered yet: in no measure


@pytest.mark.django_db
class TestResponseTimes:
    def test_median_and_p90_overall_and_per_team(self, durations):
        times = reports.response_times(**MARCH)
        assert times["overall"][FR] == {"count": 13, "median": 300.0, "p90": pytest.approx(1680.0)}
        teams = by_key(times["teams"])
        assert teams["operations"][FR] == {"count": 10, "median": 450.0, "p90": pytest.approx(1980.0)}
        assert teams["tech"][FR] == {"count": 3, "median": 200.0, "p90": pytest.approx(360.0)}
        # resolution: tech's 1000, 2000, 4000 → median 2000, p90 at 1.8 → 2000 + 0.8·2000 = 3600
        assert teams["tech"][RES] == {"count": 3, "median": 2000.0, "p90": pytest.approx(3600.0)}
        assert times["overall"][RES] == teams["tech"][RES]
        assert teams["operations"][RES] == {"count": 0, "median": None, "p90": None}

    def test_even_and_single_counts(self):
        ticket(team="product", responded=10)
        single = by_key(reports.response_times(**MARCH)["teams"])["product"][FR]
        assert single == {"count": 1, "median": 10.0, "p90": 10.0}
        ticket(team="product", responded=20)
        two = by_key(reports.response_times(**MARCH)["teams"])["product"][FR]
        # n=2: median 15; p90 at 0.9 → 10 + 0.9·10 = 19
        assert two == {"count": 2, "median": 15.0, "p90": pytest.approx(19.0)}

    def test_fractions_of_a_second_are_kept(self):
        created = datetime(2026, 3, 3, 2, 0, 0, 250_000, tzinfo=UTC)
        Ticket.objects.create(
            category="question",
            subject="s",
            body="b",
            created_at=created,
            first_responded_at=created + timedelta(milliseconds=750),
        )
        assert reports.response_times(**MARCH)["overall"][FR]["median"] == pytest.approx(0.75, abs=1e-3)

    def test_one_query(self, durations, django_assert_num_queries):
        with django_assert_num_queries(1):
            reports.response_times(**MARCH)

    @pytest.mark.postgres
    def test_postgres_percentile_cont_agrees(self, durations):
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s), percentile_cont(0.9) WITHIN GROUP (ORDER BY s)
                FROM (SELECT EXTRACT(EPOCH FROM first_responded_at - created_at) AS s
                      FROM feedback_ticket WHERE first_responded_at IS NOT NULL) d
                """
            )
            median, p90 = cursor.fetchone()
        mine = reports.response_times(**MARCH)["overall"][FR]
        assert (mine["median"], mine["p90"]) == (pytest.approx(float(median)), pytest.approx(float(p90)))


@pytest.mark.django_db
class TestBacklog:
    NOW = datetime(2026, 3, 31, 4, 0, tzinfo=UTC)

    def test_open_tickets_by_age_bucket_per_team_and_priority(self, django_assert_num_queries):
        ages = [0.5, 1, 2.9, 3, 6, 7, 29, 30, 45]  # days; a bucket includes its lower bound
        for days in ages:
            ticket(created_at=self.NOW - timedelta(days=days), status=Status.IN_PROGRESS)
        ticket(created_at=self.NOW - timedelta(days=2), status=Status.WAITING, priority="urgent")
        ticket(created_at=self.NOW - timedelta(days=2), status=Status.RESOLVED)  # not open
        ticket(created_at=self.NOW - timedelta(days=2), team="tech", status=Status.NEW, priority="crisis")
        with django_assert_num_queries(1):
            rows = reports.backlog_by_age(now=self.NOW)
        assert [(r["team"], r["priority"], r["buckets"], r["total"]) for r in rows] == [
            ("operations", "urgent", {"lt_1d": 0, "d1_3": 1, "d3_7": 0, "d7_30": 0, "gt_30d": 0}, 1),
            ("operations", "normal", {"lt_1d": 1, "d1_3": 2, "d3_7": 2, "d7_30": 2, "gt_30d": 2}, 9),
            ("tech", "crisis", {"lt_1d": 0, "d1_3": 1, "d3_7": 0, "d7_30": 0, "gt_30d": 0}, 1),
        ]


@pytest.mark.django_db
class TestSummary:
    NOW = datetime(2026, 3, 31, 4, 0, tzinfo=UTC)

    def test_the_dashboard_figures(self):
        now = self.NOW
        ticket(created_at=now - timedelta(days=1), responded=600, status=Status.IN_PROGRESS)
        ticket(created_at=now - timedelta(days=2), responded=1800, status=Status.IN_PROGRESS, targets=[(FR, BREACHED)])
        ticket(created_at=now - timedelta(days=3), responded=60, status=Status.RESOLVED, targets=[(FR, BREACHED)])
        ticket(created_at=now - timedelta(days=9), responded=5, status=Status.NEW)  # older than 7 days
        done = ticket(created_at=now - timedelta(days=20), status=Status.RESOLVED)
        for score, days in [(5, 1), (4, 10), (2, 29), (1, 31)]:  # the last is outside 30 days
            t = ticket(created_at=now - timedelta(days=40), status=Status.CLOSED)
            CsatResponse.objects.create(ticket=t, score=score, answered_at=now - timedelta(days=days))
        CsatResponse.objects.create(ticket=done, score=3, answered_at=now - timedelta(days=2))
        survey = NpsSurvey.objects.create(name="q1", segment_slug="x", sent_at=now - timedelta(days=100))
        for score, days in [(10, 1), (9, 5), (7, 10), (3, 80), (0, 91)]:  # the last is outside 90 days
            NpsResponse.objects.create(
                survey=survey, customer=CustomerFactory(), score=score, answered_at=now - timedelta(days=days)
            )
        summary = reports.feedback_summary(now=now)
        assert (summary["open"], summary["breached_open"]) == (3, 1)
        assert summary["first_response_median_7d"] == 600.0  # of 60, 600, 1800
        with translation.override("en"):
            assert reports.feedback_summary(now=now)["first_response_median_7d_label"] == "10 min"
        # CSAT over 30 days: 5, 4, 2, 3 → 3.5, 2 of 4 satisfied
        assert summary["csat_30d"] == {"average": 3.5, "count": 4, "satisfied_share": 0.5}
        # NPS over 90 days: 2 promoters, 1 passive, 1 detractor of 4 → 25
        assert summary["nps_90d"] == {"nps": 25.0, "count": 4}

    def test_four_queries(self, django_assert_num_queries):
        ticket(created_at=self.NOW - timedelta(days=1), responded=60, status=Status.IN_PROGRESS)
        with django_assert_num_queries(4):
            reports.feedback_summary(now=self.NOW)

    def test_nothing_yet(self):
        summary = reports.feedback_summary(now=self.NOW)
        assert summary["open"] == 0 and summary["first_response_median_7d"] is None
        assert summary["csat_30d"]["average"] is None and summary["nps_90d"] == {"nps": None, "count": 0}


@pytest.mark.django_db
def test_bench_calls_are_every_report_one_query_each(django_assert_num_queries):
    ticket(targets=[(FR, MET)], responded=60)
    calls = reports.bench_calls(start=BASE - timedelta(days=1), end=BASE + timedelta(days=1))
    assert set(calls) == {
        "sla_share_team",
        "sla_share_priority",
        "sla_share_category",
        "sla_share_week",
        "response_times",
        "backlog_by_age",
        "csat_by_team_week",
        "nps_by_week",
    }
    assert calls["sla_share_week"]()[0]["tickets"] == 1
    for call in calls.values():
        with django_assert_num_queries(1):
            call()


# --- the page --------------------------------------------------------------------------


@pytest.mark.django_db
class TestReportPage:
    URL = "/feedback/reports/"

    def test_needs_login_and_the_permission(self, client, make_user):
        assert client.get(self.URL).status_code == 302
        client.force_login(make_user(None, username="nobody"))
        assert client.get(self.URL).status_code == 403

    def test_viewer_sees_every_table(self, client, make_user):
        ticket(created_at=datetime(2026, 3, 3, 2, tzinfo=UTC), responded=600, targets=[(FR, MET)])
        client.force_login(make_user("viewer"))
        response = client.get(self.URL, {"start": "2026-03-01", "end": "2026-03-31"})
        assert response.status_code == 200
        html = response.content.decode()
        for name in views_reports.TABLE_TITLES:
            assert f'data-table="{name}"' in html
        assert "100.0%" in html and "10 分钟" in html
        assert reverse("feedback_reports:index") == self.URL

    @pytest.mark.parametrize(
        "params",
        [
            {"start": "2026-03-31", "end": "2026-03-01"},  # the wrong way round
            {"start": "2026-13-45", "end": "2026-03-01"},  # no such date
            {"start": "yesterday", "end": ""},
            {"start": "2025-01-01", "end": "2026-03-01"},  # more than a year
        ],
    )
    def test_bad_dates_are_a_form_error(self, client, make_user, params):
        client.force_login(make_user("viewer"))
        response = client.get(self.URL, params)
        assert response.status_code == 400
        assert 'role="alert"' in response.content.decode()
        assert response.context["tables"] == []

    def test_csv_export(self, client, make_user):
        ticket(targets=[(FR, MET)])
        ticket(targets=[(FR, MET)])
        ticket(targets=[(FR, MET)])
        ticket(targets=[(FR, BREACHED)])
        client.force_login(make_user("viewer"))
        response = client.get(
            self.URL,
            {"start": "2026-03-01", "end": "2026-03-31", "table": "sla_team", "export": "csv"},
            HTTP_ACCEPT_LANGUAGE="en",
        )
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        assert 'filename="feedback-sla-team-2026-03-01-2026-03-31.csv"' in response["Content-Disposition"]
        lines = response.content.decode("utf-8-sig").splitlines()
        assert lines[0].startswith("Team,Tickets,First response: met,First response: breached")
        assert lines[1].split(",")[1:6] == ["4", "3", "1", "0", "75.0"]
        assert lines[2].split(",")[1:6] == ["4", "3", "1", "0", "75.0"]  # the "all" row

    def test_excel_export(self, client, make_user):
        ticket(team="tech", priority="crisis", created_at=datetime(2026, 3, 30, 4, tzinfo=UTC))
        client.force_login(make_user("viewer"))
        response = client.get(self.URL, {"table": "backlog", "export": "xlsx"})
        assert response.status_code == 200
        sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
        rows = list(sheet.iter_rows(values_only=True))
        assert len(rows) == 2 and rows[1][-1] == 1

    def test_unknown_table_or_format(self, client, make_user):
        client.force_login(make_user("viewer"))
        assert client.get(self.URL, {"table": "nope", "export": "csv"}).status_code == 404
        assert client.get(self.URL, {"table": "backlog", "export": "pdf"}).status_code == 404

    def test_exports_are_formula_safe(self):
        cols = [views_reports.Column("Team", "text"), views_reports.Column("Tickets")]
        response = views_reports._export(
            "x", cols, [['=HYPERLINK("http://evil")', -3]], "csv", date(2026, 3, 1), date(2026, 3, 2)
        )
        assert response.content.decode("utf-8-sig").splitlines()[1] == '"\'=HYPERLINK(""http://evil"")",-3'

    def test_english(self, client, make_user):
        client.force_login(make_user("viewer"))
        html = client.get(self.URL, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert "Feedback reports" in html and "Open backlog by age (now)" in html


def metric(html: str, key: str) -> str:
    found = re.search(rf'data-metric="{key}"><td>[^<]*</td><td class="num">([^<]*)<', html)
    assert found, f"no metric {key}"
    return found.group(1).strip()


@pytest.mark.django_db
class TestDashboardCard:
    def test_the_card_shows_the_queue_and_scores(self, client, make_user):
        now = datetime.now(UTC)
        ticket(created_at=now - timedelta(hours=3), responded=600, status=Status.IN_PROGRESS, targets=[(FR, BREACHED)])
        ticket(created_at=now - timedelta(hours=2), status=Status.NEW)
        done = ticket(created_at=now - timedelta(days=3), status=Status.RESOLVED)
        CsatResponse.objects.create(ticket=done, score=4, answered_at=now - timedelta(days=1))
        client.force_login(make_user("viewer"))
        html = client.get("/").content.decode()
        assert 'data-card="feedback"' in html
        card = html[html.index('data-card="feedback"') :]
        assert metric(card, "open") == "2"
        assert metric(card, "breached_open") == "1"
        assert metric(card, "first_response_median_7d") == "10 分钟"
        assert "4.00 / 5" in card

    def test_not_shown_without_the_permission(self, client, make_user):
        client.force_login(make_user(None, username="nobody"))
        assert 'data-card="feedback"' not in client.get("/").content.decode()

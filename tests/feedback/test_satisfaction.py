"""CSAT and NPS: the signed one-click links, the emails (through Django's email backend,
on commit, nothing on a rollback), the answers (one per ticket, one per survey and
customer), every refusal (forged, expired, replayed, out of range, unknown segment) with
nothing written, the public pages (no login, CSRF), the operator's NPS pages and the
weekly scores the dashboards read."""

import re
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlparse

import pytest
from django.core import mail
from django.db import transaction
from django.test import Client
from django.utils import timezone, translation

from core.errors import ApplicationError
from feedback.models import CsatResponse, NpsResponse, NpsSurvey, Status, Team, Ticket
from feedback.selectors import satisfaction as selectors
from feedback.services import satisfaction as services
from feedback.services import tickets as ticket_services
from feedback.tasks import nps_survey_send_task
from segments.models import Segment, SegmentMembership
from tests.queued import run_queued
from tests.users.factories import CustomerFactory

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def resolved_ticket(customer=None, **kw) -> Ticket:
    """A resolved ticket, with its CSAT invitation's on-commit callbacks left to the caller."""
    t = ticket_services.ticket_open(
        customer=customer, category="question", subject="无法登录", body="error 500", now=NOW, **kw
    ).ticket
    return ticket_services.ticket_transition(ticket=t, action="resolve", now=NOW + timedelta(hours=1))


def path_of(url: str) -> str:
    parsed = urlparse(url)
    return parsed.path + (f"?{parsed.query}" if parsed.query else "")


def token_in(text: str, kind: str) -> str:
    found = re.search(rf"/survey/{kind}/([^/\s\"]+)/", text)
    assert found, f"no {kind} link in {text!r}"
    return found.group(1)


def flip(token: str, i: int) -> str:
    """``token`` with one character changed."""
    return token[:i] + ("B" if token[i] == "A" else "A") + token[i + 1 :]


def refuse(code: str, func, **kwargs):
    with pytest.raises(ApplicationError) as caught:
        func(**kwargs)
    assert caught.value.code == code
    return caught.value


# --- CSAT: the invitation ------------------------------------------------------------


@pytest.mark.django_db
class TestCsatInvite:
    def test_resolving_emails_the_customer_a_signed_link_on_commit(self, django_capture_on_commit_callbacks):
        customer = CustomerFactory(name="王小明", email="xm@example.com")
        with django_capture_on_commit_callbacks(execute=True):
            ticket = resolved_ticket(customer)
            assert mail.outbox == []  # not before the commit
        assert len(mail.outbox) == 1
        email = mail.outbox[0]
        assert email.to == ["xm@example.com"]
        assert f"#{ticket.pk}" in email.subject and "\n" not in email.subject
        assert "王小明" in email.body and "已解决" in email.body  # zh-hans, the customers' default
        html = email.alternatives[0][0]
        token = token_in(email.body, "csat")
        assert f"/survey/csat/{token}/?score=5" in email.body and f"/survey/csat/{token}/?score=1" in html
        assert email.body.count(f"/survey/csat/{token}/?score=") == 5
        assert selectors.csat_invitation(token=token) == ticket
        assert "14" in email.body  # the link's lifetime

    def test_the_email_is_in_the_customers_language(self, django_capture_on_commit_callbacks, settings):
        settings.FEEDBACK_CUSTOMER_LANGUAGE = "en"
        with django_capture_on_commit_callbacks(execute=True):
            ticket = resolved_ticket(CustomerFactory(name="Ann"))
        assert mail.outbox[0].subject == f"How did we do with your request #{ticket.pk}?"
        assert mail.outbox[0].body.startswith("Hello Ann,")

    def test_a_rollback_sends_nothing(self, django_capture_on_commit_callbacks):
        customer = CustomerFactory()
        with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
            resolved_ticket(customer)
            raise RuntimeError("the page failed after the resolve")
        assert mail.outbox == []
        assert not Ticket.objects.exists()

    @pytest.mark.parametrize(
        "fields",
        [{"email": ""}, {"do_not_contact": True}, {"consent_email": False}, {"email": "not-an-address"}],
    )
    def test_not_emailed_without_an_address_consent_or_with_do_not_contact(
        self, django_capture_on_commit_callbacks, fields
    ):
        with django_capture_on_commit_callbacks(execute=True):
            resolved_ticket(CustomerFactory(**fields))
        assert mail.outbox == []

    def test_no_customer_no_email(self, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            resolved_ticket(None)
        assert mail.outbox == []

    def test_a_ticket_reopened_before_the_commit_is_not_asked_about(self, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            ticket = resolved_ticket(CustomerFactory())
            ticket_services.ticket_transition(ticket=ticket, action="reopen", now=NOW + timedelta(hours=2))
        assert mail.outbox == []

    def test_an_answered_ticket_is_not_asked_again(self, django_capture_on_commit_callbacks):
        customer = CustomerFactory()
        with django_capture_on_commit_callbacks(execute=True):
            ticket = resolved_ticket(customer)
        services.csat_record(token=token_in(mail.outbox[0].body, "csat"), score=5)
        assert services.csat_invite(ticket=ticket) is None

    def test_a_failing_mail_server_does_not_undo_the_resolution(self, django_capture_on_commit_callbacks, settings):
        settings.EMAIL_BACKEND = "tests.feedback.test_satisfaction.BrokenBackend"
        with django_capture_on_commit_callbacks(execute=True):
            ticket = resolved_ticket(CustomerFactory())
        ticket.refresh_from_db()
        assert ticket.status == Status.RESOLVED


class BrokenBackend:
    def __init__(self, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def send_messages(self, messages):
        raise ConnectionRefusedError("SMTP is down")


# --- CSAT: the answer ---------------------------------------------------------------


@pytest.fixture
def csat_ticket(db):
    t = ticket_services.ticket_open(
        customer=CustomerFactory(), category="question", subject="s", body="b", now=NOW
    ).ticket
    Ticket.objects.filter(pk=t.pk).update(status=Status.RESOLVED, team=Team.objects.get(code="tech"))
    t.refresh_from_db()
    return t


@pytest.mark.django_db
class TestCsatRecord:
    def test_records_one_answer_with_the_tickets_team(self, csat_ticket):
        token = services.csat_token(ticket_id=csat_ticket.pk)
        answer = services.csat_record(token=token, score=4, comment="  很快  ")
        assert (answer.ticket, answer.score, answer.comment, answer.team.code) == (csat_ticket, 4, "很快", "tech")

    def test_a_replay_is_refused_and_the_first_answer_kept(self, csat_ticket):
        token = services.csat_token(ticket_id=csat_ticket.pk)
        services.csat_record(token=token, score=2)
        refuse("already_answered", services.csat_record, token=token, score=5)
        # a second, freshly signed link for the same ticket is refused too: one answer per ticket
        refuse("already_answered", services.csat_record, token=services.csat_token(ticket_id=csat_ticket.pk), score=5)
        assert list(CsatResponse.objects.values_list("score", flat=True)) == [2]

    @pytest.mark.parametrize(
        "forge",
        [
            lambda token: flip(token, len(token) - 1),  # the signature changed
            lambda token: flip(token, 3),  # the payload changed
            lambda token: flip(token, token.index(":") + 1),  # the timestamp changed
            lambda token: "not-a-token",
            lambda token: "",
        ],
    )
    def test_a_forged_link_is_refused(self, csat_ticket, forge):
        error = refuse(
            "invalid_link", services.csat_record, token=forge(services.csat_token(ticket_id=csat_ticket.pk)), score=5
        )
        assert error.status_code == 400
        assert not CsatResponse.objects.exists()

    def test_a_link_for_another_purpose_is_refused(self, csat_ticket):
        nps = services.nps_token(survey_id=csat_ticket.pk, customer_id=csat_ticket.customer_id)
        refuse("invalid_link", services.csat_record, token=nps, score=5)
        assert not CsatResponse.objects.exists()

    def test_a_link_for_a_ticket_that_is_gone_is_refused(self, db):
        error = refuse("invalid_link", services.csat_record, token=services.csat_token(ticket_id=999_999), score=5)
        assert error.status_code == 400
        assert not CsatResponse.objects.exists()

    def test_an_expired_link_is_refused(self, csat_ticket):
        token = services.csat_token(ticket_id=csat_ticket.pk, now=timezone.now() - timedelta(days=15))
        error = refuse("link_expired", services.csat_record, token=token, score=5)
        assert error.status_code == 410
        assert not CsatResponse.objects.exists()

    def test_expiry_is_the_setting_and_checked_as_of_now(self, csat_ticket, settings):
        token = services.csat_token(ticket_id=csat_ticket.pk, now=NOW)
        assert selectors.csat_invitation(token=token, now=NOW + timedelta(days=13, hours=23)).pk == csat_ticket.pk
        error = refuse("link_expired", selectors.csat_invitation, token=token, now=NOW + timedelta(days=14, seconds=1))
        assert error.status_code == 410
        settings.FEEDBACK_CSAT_MAX_AGE_DAYS = 30
        assert selectors.csat_invitation(token=token, now=NOW + timedelta(days=20)).pk == csat_ticket.pk

    @pytest.mark.parametrize("score", [0, 6, -1, "abc", "", None, 4.5, True])
    def test_a_score_outside_1_to_5_is_refused(self, csat_ticket, score):
        token = services.csat_token(ticket_id=csat_ticket.pk)
        refuse("invalid_score", services.csat_record, token=token, score=score)
        assert not CsatResponse.objects.exists()

    def test_a_long_comment_is_refused(self, csat_ticket):
        token = services.csat_token(ticket_id=csat_ticket.pk)
        refuse("too_long", services.csat_record, token=token, score=3, comment="x" * 2001)
        assert not CsatResponse.objects.exists()


# --- CSAT: the public page ------------------------------------------------------------


@pytest.mark.django_db
class TestCsatPage:
    def url(self, ticket, **kw):
        return f"/survey/csat/{services.csat_token(ticket_id=ticket.pk, **kw)}/"

    def test_no_login_five_buttons_and_a_preselected_score(self, client, csat_ticket):
        url = self.url(csat_ticket)
        response = client.get(url)
        assert response.status_code == 200
        html = response.content.decode()
        assert re.findall(r'name="score" value="(\d+)"', html) == ["1", "2", "3", "4", "5"]
        assert 'name="comment"' in html and "csrfmiddlewaretoken" in html
        assert " checked" not in html
        preselected = client.get(url + "?score=4").content.decode()
        assert re.findall(r'value="(\d)" required checked', preselected) == ["4"]
        assert " checked" not in client.get(url + "?score=9").content.decode()
        assert not CsatResponse.objects.exists()  # a GET never records

    def test_the_emails_link_leads_to_the_page_and_the_answer_is_recorded(
        self, client, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            ticket = resolved_ticket(CustomerFactory())
        link = re.search(r"http://\S+\?score=5", mail.outbox[0].body).group(0)
        assert 'value="5" required checked' in client.get(path_of(link)).content.decode()
        response = client.post(path_of(link).split("?")[0], {"score": "5", "comment": "谢谢"})
        assert response.status_code == 200 and 'data-role="thanks"' in response.content.decode()
        assert CsatResponse.objects.get(ticket=ticket).score == 5

    def test_replay_shows_already_answered(self, client, csat_ticket):
        url = self.url(csat_ticket)
        client.post(url, {"score": "3"})
        for response in (client.post(url, {"score": "1"}), client.get(url)):
            assert response.status_code == 409
            assert 'data-refusal="already_answered"' in response.content.decode()
        assert list(CsatResponse.objects.values_list("score", flat=True)) == [3]

    def test_forged_and_expired_links_get_their_page_and_nothing_is_written(self, client, csat_ticket):
        forged = self.url(csat_ticket)[:-3] + "zz/"
        expired = self.url(csat_ticket, now=timezone.now() - timedelta(days=15))
        for url, status, code in [(forged, 400, "invalid_link"), (expired, 410, "link_expired")]:
            for response in (client.get(url), client.post(url, {"score": "5"})):
                assert response.status_code == status
                assert f'data-refusal="{code}"' in response.content.decode()
        assert not CsatResponse.objects.exists()

    def test_an_empty_post_is_an_error(self, client, csat_ticket):
        assert client.post(self.url(csat_ticket)).status_code == 400
        assert not CsatResponse.objects.exists()

    @pytest.mark.parametrize("score", ["0", "6", "x", ""])
    def test_a_bad_score_is_an_error_on_the_page(self, client, csat_ticket, score):
        response = client.post(self.url(csat_ticket), {"score": score, "comment": "c"})
        assert response.status_code == 400
        assert 'role="alert"' in response.content.decode()
        assert not CsatResponse.objects.exists()

    def test_csrf_protects_the_public_form(self, csat_ticket):
        strict = Client(enforce_csrf_checks=True)
        url = self.url(csat_ticket)
        assert strict.post(url, {"score": "5"}).status_code == 403
        assert not CsatResponse.objects.exists()
        page = strict.get(url).content.decode()
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        assert strict.post(url, {"score": "5", "csrfmiddlewaretoken": csrf}).status_code == 200
        assert CsatResponse.objects.count() == 1

    def test_both_languages(self, client, csat_ticket):
        url = self.url(csat_ticket)
        assert "您对我们的处理满意吗" in client.get(url).content.decode()
        assert "How did we do?" in client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()


# --- NPS ----------------------------------------------------------------------------


@pytest.fixture
def segment(db):
    seg = Segment.objects.create(slug="loyal-fans", name="Loyal fans", kind=Segment.Kind.STATIC)

    def add(**fields):
        customer = CustomerFactory(**fields)
        SegmentMembership.objects.create(segment=seg, customer=customer, since=NOW)
        return customer

    seg.add = add
    return seg


@pytest.mark.django_db
class TestNpsSurvey:
    def test_create(self, segment, make_user):
        actor = make_user("operator")
        survey = services.nps_survey_create(name=" Q1 ", segment_slug="loyal-fans", question="", actor=actor)
        assert (survey.name, survey.segment_slug, survey.sent_at, survey.created_by) == (
            "Q1",
            "loyal-fans",
            None,
            actor,
        )

    def test_a_built_in_segment_is_a_segment(self, db):
        assert services.nps_survey_create(name="VIPs", segment_slug="tier-core").segment_slug == "tier-core"

    @pytest.mark.parametrize("slug", ["no-such-segment", "", "stage-nonsense"])
    def test_an_unknown_segment_is_refused_and_nothing_written(self, db, slug):
        error = refuse("unknown_segment", services.nps_survey_create, name="Q1", segment_slug=slug)
        assert error.details == {"segment_slug": slug}
        assert not NpsSurvey.objects.exists()

    def test_empty_or_long_names_are_refused(self, segment):
        refuse("blank", services.nps_survey_create, name="  ", segment_slug="loyal-fans")
        refuse("too_long", services.nps_survey_create, name="x" * 121, segment_slug="loyal-fans")
        refuse("too_long", services.nps_survey_create, name="ok", segment_slug="loyal-fans", question="q" * 301)
        assert not NpsSurvey.objects.exists()

    def test_send_one_link_per_reachable_member_in_chunks(self, segment, django_capture_on_commit_callbacks):
        reachable = [segment.add() for _ in range(5)]
        segment.add(consent_email=False)
        segment.add(do_not_contact=True)
        segment.add(email="")
        CustomerFactory()  # not in the segment
        survey = services.nps_survey_create(name="Q1", segment_slug="loyal-fans")
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            sent = services.nps_survey_send(survey=survey, now=NOW, chunk_size=2)
            assert mail.outbox == []
        assert (sent.sent_count, sent.sent_at) == (5, NOW)
        assert len(callbacks) == 3  # chunks of 2, 2 and 1: one connection each
        assert sorted(m.to[0] for m in mail.outbox) == sorted(c.email for c in reachable)
        tokens = {token_in(m.body, "nps") for m in mail.outbox}
        assert len(tokens) == 5
        invited = {selectors.nps_invitation(token=t, now=NOW)[1].pk for t in tokens}
        assert invited == {c.pk for c in reachable}
        assert "推荐" in mail.outbox[0].body  # the standard question, in zh-hans
        assert mail.outbox[0].body.count("/survey/nps/") == 11  # 0–10

    def test_reading_members_is_a_query_per_chunk_not_per_customer(self, segment, django_assert_max_num_queries):
        for _ in range(40):
            segment.add()
        survey = services.nps_survey_create(name="Q1", segment_slug="loyal-fans")
        with django_assert_max_num_queries(12):
            services.nps_survey_send(survey=survey, chunk_size=20)
        assert NpsSurvey.objects.get().sent_count == 40

    def test_a_second_send_is_refused(self, segment, django_capture_on_commit_callbacks):
        segment.add()
        survey = services.nps_survey_create(name="Q1", segment_slug="loyal-fans")
        with django_capture_on_commit_callbacks(execute=True):
            services.nps_survey_send(survey=survey)
            refuse("already_sent", services.nps_survey_send, survey=survey)
        assert len(mail.outbox) == 1
        assert NpsSurvey.objects.get().sent_count == 1

    def test_a_rolled_back_send_sends_nothing_and_can_be_sent_again(self, segment, django_capture_on_commit_callbacks):
        segment.add()
        survey = services.nps_survey_create(name="Q1", segment_slug="loyal-fans")
        with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
            services.nps_survey_send(survey=survey)
            raise RuntimeError
        assert mail.outbox == []
        assert NpsSurvey.objects.get().sent_at is None
        with django_capture_on_commit_callbacks(execute=True):
            services.nps_survey_send(survey=survey)
        assert len(mail.outbox) == 1

    def test_a_segment_deleted_since_refuses_the_send(self, segment):
        survey = services.nps_survey_create(name="Q1", segment_slug="loyal-fans")
        segment.delete()
        refuse("unknown_segment", services.nps_survey_send, survey=survey)
        assert NpsSurvey.objects.get().sent_at is None

    def test_the_task_sends_once(self, segment, django_capture_on_commit_callbacks):
        segment.add()
        survey = services.nps_survey_create(name="Q1", segment_slug="loyal-fans")
        assert nps_survey_send_task.name == "feedback.nps_survey_send"
        with django_capture_on_commit_callbacks(execute=True):
            assert nps_survey_send_task(survey.pk) == 1
            assert nps_survey_send_task(survey.pk) is None
            assert nps_survey_send_task(999_999) is None
        assert len(mail.outbox) == 1


@pytest.fixture
def sent_survey(segment):
    customer = segment.add()
    survey = services.nps_survey_create(name="Q1", segment_slug="loyal-fans")
    services.nps_survey_send(survey=survey, now=NOW)
    survey.refresh_from_db()
    survey.customer = customer
    return survey


@pytest.mark.django_db
class TestNpsRecord:
    def token(self, survey, **kw):
        return services.nps_token(survey_id=survey.pk, customer_id=survey.customer.pk, **kw)

    @pytest.mark.parametrize("score", [0, 10, "7"])
    def test_records_scores_0_to_10(self, sent_survey, score):
        answer = services.nps_record(token=self.token(sent_survey), score=score, comment="ok")
        assert (answer.survey, answer.customer, answer.score) == (sent_survey, sent_survey.customer, int(score))

    @pytest.mark.parametrize("score", [11, -1, "11", "ten", None])
    def test_a_score_outside_0_to_10_is_refused(self, sent_survey, score):
        refuse("invalid_score", services.nps_record, token=self.token(sent_survey), score=score)
        assert not NpsResponse.objects.exists()

    def test_one_answer_per_survey_and_customer(self, sent_survey):
        token = self.token(sent_survey)
        services.nps_record(token=token, score=9)
        refuse("already_answered", services.nps_record, token=token, score=1)
        assert list(NpsResponse.objects.values_list("score", flat=True)) == [9]

    def test_forged_expired_and_cross_purpose_links_are_refused(self, sent_survey, csat_ticket):
        token = self.token(sent_survey)
        refuse("invalid_link", services.nps_record, token=flip(token, len(token) - 1), score=9)
        refuse(
            "link_expired",
            services.nps_record,
            token=self.token(sent_survey, now=NOW),
            score=9,
            now=NOW + timedelta(days=31),
        )
        refuse("invalid_link", services.nps_record, token=services.csat_token(ticket_id=csat_ticket.pk), score=9)
        assert not NpsResponse.objects.exists()

    def test_a_survey_not_sent_has_no_valid_link(self, segment):
        customer = segment.add()
        survey = services.nps_survey_create(name="draft", segment_slug="loyal-fans")
        token = services.nps_token(survey_id=survey.pk, customer_id=customer.pk)
        error = refuse("invalid_link", services.nps_record, token=token, score=9)
        assert error.code == "invalid_link"
        assert not NpsResponse.objects.exists()

    def test_the_public_page(self, client, sent_survey):
        url = f"/survey/nps/{self.token(sent_survey)}/"
        html = client.get(url + "?score=0").content.decode()
        assert re.findall(r'name="score" value="(\d+)"', html) == [str(n) for n in range(11)]
        assert re.findall(r'value="(\d+)" required checked', html) == ["0"]
        assert client.post(url, {"score": "11"}).status_code == 400
        assert not NpsResponse.objects.exists()
        assert client.post(url, {"score": "8", "comment": "不错"}).status_code == 200
        assert client.post(url, {"score": "8"}).status_code == 409
        assert NpsResponse.objects.get().comment == "不错"


# --- scores for the dashboards -----------------------------------------------------------


@pytest.mark.django_db
class TestScores:
    def test_csat_by_team_and_week(self, django_assert_num_queries):
        tech, ops = Team.objects.get(code="tech"), Team.objects.get(code="operations")
        rows = [
            (tech, 5, datetime(2026, 3, 2, 1, tzinfo=UTC)),  # Mon 09:00 Shanghai, week 10
            (tech, 4, datetime(2026, 3, 4, 1, tzinfo=UTC)),
            (tech, 1, datetime(2026, 3, 8, 15, 59, tzinfo=UTC)),  # Sun 23:59 Shanghai: still week 10
            (ops, 3, datetime(2026, 3, 8, 16, 0, tzinfo=UTC)),  # Mon 00:00 Shanghai: week 11
            (None, 5, datetime(2026, 3, 9, 4, tzinfo=UTC)),
        ]
        for team, score, at in rows:
            t = Ticket.objects.create(category="question", subject="s", body="b", team=team)
            CsatResponse.objects.create(ticket=t, team=team, score=score, answered_at=at)
        with django_assert_num_queries(1):
            found = selectors.csat_by_team_week(start=date(2026, 3, 2), end=date(2026, 3, 15))
        assert [(r["week_label"], r["team"], r["count"], r["average"], r["satisfied_share"]) for r in found] == [
            ("2026-W10", "tech", 3, pytest.approx(10 / 3), pytest.approx(2 / 3)),
            ("2026-W11", "operations", 1, 3.0, 0.0),
            ("2026-W11", None, 1, 5.0, 1.0),
        ]

    def test_nps_by_week(self, django_assert_num_queries):
        survey = NpsSurvey.objects.create(name="q", segment_slug="x", sent_at=NOW)
        scores = [(10, 2), (9, 3), (8, 3), (6, 4), (0, 4), (10, 10)]  # (score, day of March)
        for score, day in scores:
            NpsResponse.objects.create(
                survey=survey,
                customer=CustomerFactory(),
                score=score,
                answered_at=datetime(2026, 3, day, 4, tzinfo=UTC),
            )
        with django_assert_num_queries(1):
            found = selectors.nps_by_week(start=date(2026, 3, 1), end=date(2026, 3, 31))
        # week 10: 2 promoters, 1 passive, 2 detractors of 5 → 0; week 11: 1 promoter → 100
        assert [
            (r["week_label"], r["count"], r["promoters"], r["passives"], r["detractors"], r["nps"]) for r in found
        ] == [
            ("2026-W10", 5, 2, 1, 2, 0.0),
            ("2026-W11", 1, 1, 0, 0, 100.0),
        ]

    def test_survey_results(self, sent_survey):
        NpsSurvey.objects.filter(pk=sent_survey.pk).update(sent_count=12)
        sent_survey.refresh_from_db()
        for score in [10, 10, 9, 7, 5, 0]:
            NpsResponse.objects.create(survey=sent_survey, customer=CustomerFactory(), score=score)
        results = selectors.nps_survey_results(survey=sent_survey)
        assert [d["count"] for d in results["distribution"]] == [1, 0, 0, 0, 0, 1, 0, 1, 0, 1, 2]
        assert (results["promoters"], results["passives"], results["detractors"]) == (3, 1, 2)
        assert results["nps"] == pytest.approx(100 * (3 - 2) / 6)
        assert results["response_rate"] == 0.5  # 6 answers of 12 sent


# --- the operator's NPS pages -----------------------------------------------------------------


@pytest.mark.django_db
class TestNpsPages:
    def test_an_operator_creates_and_sends_a_survey(
        self, client, make_user, segment, django_capture_on_commit_callbacks
    ):
        segment.add()
        segment.add()
        client.force_login(make_user("operator"))
        assert client.get("/feedback/reports/nps/").status_code == 200
        response = client.post(
            "/feedback/reports/nps/", {"name": "Q1 NPS", "segment_slug": "loyal-fans", "question": ""}
        )
        survey = NpsSurvey.objects.get()
        assert response.status_code == 302 and response["Location"] == f"/feedback/reports/nps/{survey.pk}/"
        assert 'data-action="send"' in client.get(response["Location"]).content.decode()
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            assert client.post(f"/feedback/reports/nps/{survey.pk}/send/").status_code == 302
        with django_capture_on_commit_callbacks(execute=True):
            assert run_queued(callbacks) == {"feedback.nps_survey_send": [(survey.pk,)]}
        assert len(mail.outbox) == 2
        survey.refresh_from_db()
        assert survey.sent_count == 2
        services.nps_record(token=token_in(mail.outbox[0].body, "nps"), score=10)
        html = client.get(f"/feedback/reports/nps/{survey.pk}/").content.decode()
        assert 'data-action="send"' not in html
        assert re.search(r'data-kpi="nps">.*?<p class="kpi-value">100.0</p>', html, re.S)
        assert 'data-score="10"><td>10</td><td class="num">1</td>' in html
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            client.post(f"/feedback/reports/nps/{survey.pk}/send/")
        assert callbacks == []  # already sent: nothing queued

    def test_an_unknown_segment_is_a_form_error(self, client, make_user):
        client.force_login(make_user("operator"))
        response = client.post("/feedback/reports/nps/", {"name": "Q1", "segment_slug": "nope"})
        assert response.status_code == 400
        assert "nope" in response.content.decode() and 'role="alert"' in response.content.decode()
        assert not NpsSurvey.objects.exists()

    def test_a_viewer_sees_but_cannot_create_or_send(self, client, make_user, sent_survey):
        client.force_login(make_user("viewer"))
        html = client.get("/feedback/reports/nps/").content.decode()
        assert 'data-form="survey-create"' not in html and "Q1" in html
        assert client.post("/feedback/reports/nps/", {"name": "x", "segment_slug": "loyal-fans"}).status_code == 403
        assert client.post(f"/feedback/reports/nps/{sent_survey.pk}/send/").status_code == 403
        assert NpsSurvey.objects.count() == 1

    def test_unknown_survey_is_404(self, client, make_user):
        client.force_login(make_user("viewer"))
        assert client.get("/feedback/reports/nps/999/").status_code == 404

    def test_english(self, client, make_user):
        client.force_login(make_user("operator"))
        with translation.override("en"):
            html = client.get("/feedback/reports/nps/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert "NPS surveys" in html and "Create survey" in html

"""The ticket pages: the queue (who sees which queue, every filter, the urgency order,
keyset pages, the query count, bulk assign), a ticket (what each role may see and do,
every form's bad input shown with nothing written, canned replies, attachments) and
the new-ticket page for customer service."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from feedback import workflow
from feedback.models import Attachment, CannedReply, Message, SlaTarget, Status, Team, Ticket, TicketEvent
from feedback.selectors import pages as page_selectors
from feedback.services import canned as canned_services
from feedback.services import tickets as services
from incentives.services import points_post
from segments.models import CustomerScore, SegmentRun
from tests.segments.factories import ensure_rule_set
from tests.users.factories import CustomerFactory, OrderFactory

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
PASSWORD = "correct-horse-battery"


def _open(**kw) -> Ticket:
    args = {"customer": None, "category": "question", "subject": "Cannot log in", "body": "It says error 500"}
    return services.ticket_open(**{**args, **kw}).ticket


def _client(user, language: str = "en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def _shown(response) -> list[int]:
    """The ticket numbers of the queue's rows, in the order shown."""
    return [int(i) for i in re.findall(r'data-ticket="(\d+)"', response.content.decode())]


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def teams(db):
    return {t.code: t for t in Team.objects.all()}


@pytest.fixture
def olga(make_user, teams):
    """An operator in the operations team."""
    user = make_user("operator", username="olga")
    teams["operations"].members.add(user)
    return user


@pytest.fixture
def tom(make_user, teams):
    """An operator in the tech team."""
    user = make_user("operator", username="tom")
    teams["tech"].members.add(user)
    return user


@pytest.fixture
def vera(make_user, teams):
    """A viewer in the operations team: reads its queue, changes nothing."""
    user = make_user("viewer", username="vera")
    teams["operations"].members.add(user)
    return user


@pytest.fixture
def ada(make_user):
    return make_user("admin", username="ada")


@pytest.fixture
def ops_ticket(db):
    return _open(category="question", subject="Where is my parcel")  # → operations


@pytest.fixture
def tech_ticket(db):
    return _open(category="complaint", subject="The app crashes")  # → tech


# --- the queue ----------------------------------------------------------------------


@pytest.mark.django_db
class TestQueueAccess:
    def test_viewer_sees_their_teams_queue_without_bulk_assign(self, vera, ops_ticket, tech_ticket):
        r = _client(vera).get("/feedback/")
        assert r.status_code == 200
        assert _shown(r) == [ops_ticket.pk]
        assert b'name="bulk-tickets"' not in r.content
        assert b"Where is my parcel" in r.content and b"The app crashes" not in r.content

    def test_operator_sees_only_their_teams_queue(self, tom, ops_ticket, tech_ticket):
        assert _shown(_client(tom).get("/feedback/")) == [tech_ticket.pk]

    def test_admin_sees_every_queue(self, ada, ops_ticket, tech_ticket):
        assert sorted(_shown(_client(ada).get("/feedback/"))) == [ops_ticket.pk, tech_ticket.pk]

    def test_signed_out_goes_to_login(self, db):
        r = Client().get("/feedback/")
        assert r.status_code == 302 and r["Location"].startswith("/login/")

    def test_no_role_is_403(self, make_user):
        assert _client(make_user(None, username="nobody")).get("/feedback/").status_code == 403

    def test_nav_links_the_queue(self, olga):
        r = _client(olga).get("/")
        assert b'href="/feedback/"' in r.content


@pytest.mark.django_db
class TestQueueFilters:
    @pytest.fixture
    def world(self, olga, make_user, teams):
        """Tickets an admin sees, one property apart each."""
        other = make_user("operator", username="otto")
        teams["operations"].members.add(other)
        customer = CustomerFactory(external_id="vip-1")
        t = {
            "mine": _open(subject="Mine", priority="high"),
            "otto": _open(subject="Otto's", category="emotional"),
            "tech": _open(subject="Tech one", category="complaint"),
            "suggest": _open(subject="Idea: dark mode", category="suggestion", customer=customer),
            "resolved": _open(subject="Done already"),
            "waiting": _open(subject="Waiting one"),
            "breached": _open(subject="Late one", now=timezone.now() - timedelta(days=30)),
            "warned": _open(subject="Warned one"),
        }
        services.ticket_assign(ticket=t["mine"], team=teams["operations"], assignee=olga, actor=olga)
        services.ticket_assign(ticket=t["otto"], team=teams["operations"], assignee=other, actor=olga)
        services.ticket_transition(ticket=t["resolved"], action="resolve", actor=olga)
        services.ticket_transition(ticket=t["waiting"], action="start", actor=olga)
        services.ticket_transition(ticket=t["waiting"], action="wait", actor=olga)
        # What the escalation sweep writes when a target passes its warning share or its due time.
        SlaTarget.objects.filter(ticket=t["breached"]).update(breached_at=timezone.now(), warned_at=timezone.now())
        SlaTarget.objects.filter(ticket=t["warned"], kind="first_response").update(warned_at=timezone.now())
        return t

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("", {"mine", "otto", "tech", "suggest", "waiting", "breached", "warned"}),
            ("status=all", {"mine", "otto", "tech", "suggest", "resolved", "waiting", "breached", "warned"}),
            ("status=resolved", {"resolved"}),
            ("status=waiting_on_customer", {"waiting"}),
            ("team=tech", {"tech"}),
            ("team=product", {"suggest"}),
            ("assignee=me", {"mine"}),
            ("assignee=none", {"tech", "suggest", "waiting", "breached", "warned"}),
            ("priority=high", {"mine"}),
            ("category=emotional", {"otto"}),
            ("sla=breached", {"breached"}),
            ("sla=warning", {"warned"}),
            ("sla=paused", {"waiting"}),
            ("sla=on_track", {"mine", "otto", "tech", "suggest", "waiting"}),
            ("q=dark+mode", {"suggest"}),
            ("customer=vip-1", {"suggest"}),
            ("team=operations&assignee=me&priority=high", {"mine"}),
        ],
    )
    def test_each_filter_filters(self, ada, olga, world, query, expected):
        # olga is in operations only; the admin sees every team, so the filters alone decide.
        world_ids = {name: t.pk for name, t in world.items()}
        client = _client(olga if "assignee=me" in query else ada)
        r = client.get(f"/feedback/?{query}")
        assert r.status_code == 200
        assert set(_shown(r)) == {world_ids[n] for n in expected}

    def test_search_by_ticket_number(self, ada, world):
        assert _shown(_client(ada).get(f"/feedback/?q={world['tech'].pk}")) == [world["tech"].pk]

    def test_assignee_by_person(self, ada, world):
        otto = Ticket.objects.get(pk=world["otto"].pk).assignee
        assert _shown(_client(ada).get(f"/feedback/?assignee={otto.pk}")) == [world["otto"].pk]

    def test_an_unknown_filter_value_is_said_and_ignored(self, ada, world):
        r = _client(ada).get("/feedback/?priority=asap&team=nope")
        assert r.status_code == 200
        assert 'data-error="priority"' in r.content.decode() and 'data-error="team"' in r.content.decode()
        assert len(_shown(r)) == 7  # the default: every open ticket

    def test_a_viewer_cannot_filter_into_another_team(self, vera, world):
        r = _client(vera).get("/feedback/?team=tech")
        assert 'data-error="team"' in r.content.decode()  # not a team of theirs to choose
        assert world["tech"].pk not in _shown(r)

    def test_rows_show_both_targets_the_badge_team_assignee_and_customer(self, ada, world):
        html = _client(ada).get("/feedback/?status=all").content.decode()
        row = re.search(rf'<tr data-ticket-row data-ticket="{world["breached"].pk}".*?</tr>', html, re.S).group(0)
        assert 'data-badge="breach"' in row and "Breached" in row
        assert 'data-target="first_response"' in row and 'data-target="resolution"' in row
        assert "Response overdue" in row and "Resolution" in row
        warned = re.search(rf'<tr data-ticket-row data-ticket="{world["warned"].pk}".*?</tr>', html, re.S).group(0)
        assert 'data-badge="warning"' in warned
        mine = re.search(rf'<tr data-ticket-row data-ticket="{world["mine"].pk}".*?</tr>', html, re.S).group(0)
        assert "olga" in mine and "operations" in mine
        suggest = re.search(rf'<tr data-ticket-row data-ticket="{world["suggest"].pk}".*?</tr>', html, re.S).group(0)
        assert 'href="/customers/vip-1/"' in suggest

    def test_time_left_reads_humanely_in_chinese(self, ada, db):
        _open(priority="crisis")  # response within 1 hour, around the clock
        html = _client(ada, "zh-hans").get("/feedback/").content.decode()
        assert re.search(r"响应 (59|60) 分钟", html) or "响应 1 小时" in html
        assert "解决 23 小时" in html or "解决 1 天" in html


@pytest.mark.django_db
class TestQueueOrder:
    def test_breached_first_then_nearest_due_then_priority_paused_last(self, ada, olga):
        now = timezone.now()
        late = _open(subject="late", priority="low", now=now - timedelta(days=30))
        crisis = _open(subject="crisis", priority="crisis")  # due in 1 h
        urgent = _open(subject="urgent", priority="urgent")  # due in 24 h
        waiting = _open(subject="waiting", priority="crisis")
        services.ticket_transition(ticket=waiting, action="start", actor=olga)
        services.ticket_transition(ticket=waiting, action="wait", actor=olga)
        assert _shown(_client(ada).get("/feedback/")) == [late.pk, crisis.pk, urgent.pk, waiting.pk]

    def test_same_due_time_higher_priority_first(self, ada):
        at = timezone.now() - timedelta(minutes=5)
        normal = _open(subject="n", priority="normal", now=at)
        high = _open(subject="h", priority="high", now=at)
        SlaTarget.objects.filter(ticket__in=[normal, high]).update(due_at=at + timedelta(hours=2))
        assert _shown(_client(ada).get("/feedback/")) == [high.pk, normal.pk]

    def test_keyset_pages_cover_the_queue_once_in_order(self, ada, olga, monkeypatch):
        now = timezone.now()
        for i in range(12):
            ticket = _open(subject=f"t{i}", priority=["low", "normal", "high", "urgent", "crisis"][i % 5], now=now)
            if i % 4 == 0:
                services.ticket_transition(ticket=ticket, action="resolve", actor=olga)
            elif i % 4 == 1:
                services.ticket_transition(ticket=ticket, action="start", actor=olga)
                services.ticket_transition(ticket=ticket, action="wait", actor=olga)
        every = _shown(_client(ada).get("/feedback/?status=all"))
        assert len(every) == 12
        monkeypatch.setattr(page_selectors, "PAGE_SIZE", 5)
        client, seen, url = _client(ada), [], "/feedback/?status=all"
        while url:
            r = client.get(url)
            seen += _shown(r)
            found = re.search(r'href="([^"]+)" rel="next"', r.content.decode())
            url = found.group(1).replace("&amp;", "&") if found else None
        assert seen == every  # three pages across both groups, each ticket once

    def test_tickets_whose_clock_does_not_run_come_newest_first(self, ada, olga):
        now = timezone.now()
        older, newer = _open(subject="older", now=now - timedelta(hours=2)), _open(subject="newer", now=now)
        for ticket in (older, newer):
            services.ticket_transition(ticket=ticket, action="resolve", actor=olga)
        assert _shown(_client(ada).get("/feedback/?status=resolved")) == [newer.pk, older.pk]

    @pytest.mark.parametrize(
        "after",
        ["9.x.1", "r.1.2", "r.1.2.3.x", "i.-1.2", f"r.{10**30}.1.1.1", f"r.0.0.0.{2**63}", f"i.{10**19}.1", "r" * 5000],
    )
    def test_a_malformed_cursor_starts_from_the_top(self, ada, ops_ticket, after):
        r = _client(ada).get("/feedback/", {"after": after})
        assert r.status_code == 200 and _shown(r) == [ops_ticket.pk]

    @pytest.mark.parametrize(
        "query",
        [{"q": "x" * 5000}, {"q": "' OR 1=1 --"}, {"assignee": "1 OR 1=1"}, {"team": "<script>"}, {"status": "*"}],
    )
    def test_hostile_filters_are_refused_not_run(self, ada, ops_ticket, query):
        r = _client(ada).get("/feedback/", query)
        assert r.status_code == 200
        assert f'data-error="{next(iter(query))}"' in r.content.decode() or _shown(r) == []
        assert "<script>" not in r.content.decode()

    def test_a_nul_in_the_query_is_a_400(self, ada):
        assert _client(ada).get("/feedback/?q=%00").status_code == 400

    def test_no_count_only_whether_more_follow(self, ada, monkeypatch):
        for i in range(3):
            _open(subject=f"t{i}")
        assert "3 matching tickets" in _client(ada).get("/feedback/").content.decode()
        monkeypatch.setattr(page_selectors, "PAGE_SIZE", 2)
        first = _client(ada).get("/feedback/").content.decode()
        assert "Showing 2; more on the next page" in first
        after = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
        assert "Showing 1, the last of them" in _client(ada).get(after).content.decode()


@pytest.mark.django_db
def test_queue_query_count_does_not_grow_with_the_rows(olga, teams, django_assert_max_num_queries):
    def make(n):
        for i in range(n):
            ticket = _open(subject=f"t{i}", customer=CustomerFactory())
            if i % 2:
                services.ticket_assign(ticket=ticket, team=teams["operations"], assignee=olga, actor=olga)
            if i % 3 == 0:
                services.ticket_transition(ticket=ticket, action="resolve", actor=olga)

    client = _client(olga)
    client.get("/feedback/")  # the session's first read of the user
    make(4)
    with CaptureQueriesContext(connection) as few:
        client.get("/feedback/?status=all")
    make(36)
    # session, user, 2× permissions, teams + members, the viewer's teams, the running
    # group's keys, the idle group's keys, the tickets, their SLA targets
    with django_assert_max_num_queries(11) as many:
        r = client.get("/feedback/?status=all")
    assert len(_shown(r)) == 40
    assert len(many) == len(few)


@pytest.mark.django_db
class TestBulkAssign:
    def test_assigns_the_ticked_tickets(self, olga, teams):
        a, b = _open(subject="a"), _open(subject="b")
        r = _client(olga).post(
            "/feedback/bulk-assign",
            {
                "bulk-tickets": [a.pk, b.pk],
                "bulk-team": "operations",
                "bulk-assignee": olga.pk,
                "bulk-next": "/feedback/?status=all",
            },
            follow=True,
        )
        assert r.redirect_chain[-1][0] == "/feedback/?status=all"
        assert "2 ticket(s) assigned to operations, olga." in _messages(r)
        assert set(Ticket.objects.filter(pk__in=[a.pk, b.pk]).values_list("assignee__username", flat=True)) == {"olga"}

    def test_a_refusal_assigns_none(self, olga, tom):
        a, b = _open(subject="a"), _open(subject="b")
        before = TicketEvent.objects.count()
        r = _client(olga).post(
            "/feedback/bulk-assign",
            {"bulk-tickets": [a.pk, b.pk], "bulk-team": "operations", "bulk-assignee": tom.pk},
            follow=True,
        )
        assert any("tom is not in the operations team" in m and "Nothing was assigned" in m for m in _messages(r))
        assert list(Ticket.objects.filter(pk__in=[a.pk, b.pk]).values_list("assignee", flat=True)) == [None, None]
        assert TicketEvent.objects.count() == before

    def test_a_ticket_outside_the_viewers_queues_is_refused(self, olga, tech_ticket, ops_ticket):
        r = _client(olga).post(
            "/feedback/bulk-assign",
            {"bulk-tickets": [ops_ticket.pk, tech_ticket.pk], "bulk-team": "operations", "bulk-assignee": olga.pk},
            follow=True,
        )
        assert f"Unknown ticket(s): #{tech_ticket.pk}. Nothing was assigned." in _messages(r)
        assert Ticket.objects.get(pk=ops_ticket.pk).assignee is None

    def test_nothing_ticked(self, olga):
        r = _client(olga).post("/feedback/bulk-assign", {"bulk-team": "operations"}, follow=True)
        assert "Tick at least one ticket." in _messages(r)

    def test_viewer_is_403(self, vera, ops_ticket):
        r = _client(vera).post("/feedback/bulk-assign", {"bulk-tickets": [ops_ticket.pk], "bulk-team": "operations"})
        assert r.status_code == 403
        assert Ticket.objects.get(pk=ops_ticket.pk).assignee is None

    def test_next_must_be_this_site(self, olga, ops_ticket):
        r = _client(olga).post(
            "/feedback/bulk-assign",
            {"bulk-tickets": [ops_ticket.pk], "bulk-team": "operations", "bulk-next": "https://evil.example/"},
        )
        assert r["Location"] == "/feedback/"


# --- one ticket ---------------------------------------------------------------------


@pytest.mark.django_db
class TestTicketAccess:
    def test_viewer_reads_but_has_no_reply_form_and_cannot_reply(self, vera, ops_ticket):
        client = _client(vera)
        r = client.get(f"/feedback/{ops_ticket.pk}/")
        assert r.status_code == 200
        html = r.content.decode()
        assert 'id="reply-form"' not in html and 'id="note-form"' not in html and 'data-role="actions"' not in html
        assert client.post(f"/feedback/{ops_ticket.pk}/reply", {"reply-body": "hello"}).status_code == 403
        assert client.post(f"/feedback/{ops_ticket.pk}/transition", {"action": "resolve"}).status_code == 403
        assert client.post(f"/feedback/{ops_ticket.pk}/note", {"note-body": "psst"}).status_code == 403
        assert not Message.objects.exists()
        assert Ticket.objects.get(pk=ops_ticket.pk).status == Status.NEW

    def test_operator_of_another_team_gets_404_everywhere(self, tom, ops_ticket):
        client = _client(tom)
        assert client.get(f"/feedback/{ops_ticket.pk}/").status_code == 404
        assert client.post(f"/feedback/{ops_ticket.pk}/reply", {"reply-body": "hi"}).status_code == 404
        assert client.post(f"/feedback/{ops_ticket.pk}/assign", {"take": "1"}).status_code == 404
        assert not Message.objects.exists()
        assert Ticket.objects.get(pk=ops_ticket.pk).assignee is None

    def test_admin_opens_any_ticket(self, ada, tech_ticket):
        assert _client(ada).get(f"/feedback/{tech_ticket.pk}/").status_code == 200

    def test_unknown_ticket_is_404(self, ada):
        assert _client(ada).get("/feedback/99999/").status_code == 404


@pytest.mark.django_db
class TestTicketPage:
    @pytest.fixture
    def customer(self, db):
        customer = CustomerFactory(external_id="c-360", nickname="小美")
        run = SegmentRun.objects.create(
            status="published", published_at=timezone.now(), as_of=timezone.now(), rule_set=ensure_rule_set()
        )
        CustomerScore.objects.create(run=run, customer=customer, tier="core", stage="mature", rfm_group="general")
        points_post(customer=customer, kind="earn", amount=1200, reason="welcome", idempotency_key="pts-1")
        OrderFactory(customer=customer, external_id="order-360")
        return customer

    def test_shows_the_ticket_sla_basis_customer_and_actions(self, olga, customer):
        ticket = _open(customer=customer, subject="Refund please", body="Order order-360 arrived broken")
        html = _client(olga).get(f"/feedback/{ticket.pk}/").content.decode()
        assert "Refund please" in html and "Order order-360 arrived broken" in html
        assert 'data-target="first_response"' in html and 'data-target="resolution"' in html
        assert "Due" in html and "Time left" in html
        # VIP rule: the core tier is raised one step, and the page says so
        assert "Priority matrix:" in html and "VIP rule “VIP” (core): normal → high." in html
        assert 'href="/customers/c-360/"' in html
        assert 'data-field="tier">core<' in html and 'data-field="stage">mature<' in html
        assert 'data-field="points">1,200<' in html and "order-360" in html
        shown = re.findall(r'data-action="(\w+)"', html)
        assert shown == workflow.actions_from(Status.NEW)

    def test_the_conversation_tells_notes_from_replies(self, olga, ops_ticket):
        services.ticket_reply(ticket=ops_ticket, body="We are on it", actor=olga)
        services.ticket_note(ticket=ops_ticket, body="Check the courier API", actor=olga)
        services.ticket_customer_reply(ticket=ops_ticket, body="Thanks!")
        html = _client(olga).get(f"/feedback/{ops_ticket.pk}/").content.decode()
        kinds = re.findall(r'data-message data-kind="(\w+)"', html)
        assert kinds == ["reply", "note", "customer"]
        note = re.search(r'<article class="fb-msg fb-msg-note".*?</article>', html, re.S).group(0)
        assert "Internal note: never shown to the customer" in note and "Check the courier API" in note

    def test_history_says_who_did_what_from_and_to(self, olga, teams, ops_ticket):
        services.ticket_assign(ticket=ops_ticket, team=teams["operations"], assignee=olga, actor=olga)
        services.ticket_transition(ticket=ops_ticket, action="triage", actor=olga)
        html = _client(olga).get(f"/feedback/{ops_ticket.pk}/").content.decode()
        history = re.search(r'data-table="history".*?</table>', html, re.S).group(0)
        assert "Assigned" in history and "assignee: — → olga" in history
        assert "Triage" in history and "status: new → triaged" in history

    def test_merged_duplicates_conversation_shows_on_the_primary(self, olga):
        primary, dup = _open(subject="primary"), _open(subject="duplicate")
        services.ticket_customer_reply(ticket=dup, body="Me too, same problem")
        services.ticket_merge(duplicate=dup, into=primary, actor=olga)
        html = _client(olga).get(f"/feedback/{primary.pk}/").content.decode()
        assert "Me too, same problem" in html and f"from merged #{dup.pk}" in html
        assert f'href="/feedback/{dup.pk}/"' in html
        dup_html = _client(olga).get(f"/feedback/{dup.pk}/").content.decode()
        assert f"This ticket was merged into #{primary.pk}" in dup_html and 'id="reply-form"' not in dup_html


@pytest.mark.django_db
class TestReply:
    def test_send(self, olga, ops_ticket):
        r = _client(olga).post(f"/feedback/{ops_ticket.pk}/reply", {"reply-body": "Hello", "reply-then": ""})
        assert r.status_code == 302 and r["Location"] == f"/feedback/{ops_ticket.pk}/"
        message = Message.objects.get()
        assert (message.kind, message.body, message.author) == (Message.Kind.REPLY, "Hello", olga)
        assert Ticket.objects.get(pk=ops_ticket.pk).status == Status.IN_PROGRESS

    @pytest.mark.parametrize(("then", "status"), [("wait", Status.WAITING), ("resolve", Status.RESOLVED)])
    def test_send_and_move_on(self, olga, ops_ticket, then, status):
        r = _client(olga).post(
            f"/feedback/{ops_ticket.pk}/reply", {"reply-body": "Done", "reply-then": then}, follow=True
        )
        assert Ticket.objects.get(pk=ops_ticket.pk).status == status
        assert any(m.startswith("Reply sent;") for m in _messages(r))

    def test_blank_reply_is_refused_and_nothing_written(self, olga, ops_ticket):
        r = _client(olga).post(f"/feedback/{ops_ticket.pk}/reply", {"reply-body": "   "})
        assert r.status_code == 200
        assert 'data-error="reply-body">Write the reply before sending it.<' in r.content.decode()
        assert not Message.objects.exists()

    def test_reply_to_a_closed_ticket_is_refused_and_the_text_kept(self, olga, ops_ticket):
        services.ticket_transition(ticket=ops_ticket, action="resolve", actor=olga)
        services.ticket_transition(ticket=ops_ticket, action="close", actor=olga)
        events = TicketEvent.objects.count()
        r = _client(olga).post(f"/feedback/{ops_ticket.pk}/reply", {"reply-body": "Late answer"})
        html = r.content.decode()
        assert 'data-error="reply">This ticket is closed: reopen it first.<' in html
        assert not Message.objects.exists() and TicketEvent.objects.count() == events

    @pytest.mark.parametrize(
        ("moves", "buttons"),
        [
            ([], ["send", "send-wait", "send-resolve"]),
            (["start", "wait"], ["send", "send-resolve"]),
            (["resolve"], ["send"]),
        ],
    )
    def test_only_follow_ups_the_workflow_allows_are_offered(self, olga, ops_ticket, moves, buttons):
        for action in moves:
            services.ticket_transition(ticket=ops_ticket, action=action, actor=olga)
        html = _client(olga).get(f"/feedback/{ops_ticket.pk}/").content.decode()
        assert re.findall(r'data-role="(send[\w-]*)"', html) == buttons

    def test_a_refused_follow_up_sends_nothing(self, olga, ops_ticket):
        services.ticket_transition(ticket=ops_ticket, action="resolve", actor=olga)
        r = _client(olga).post(f"/feedback/{ops_ticket.pk}/reply", {"reply-body": "Hello?", "reply-then": "wait"})
        assert "cannot be moved by" in r.content.decode()
        assert not Message.objects.exists()

    def test_unknown_follow_up_is_refused(self, olga, ops_ticket):
        r = _client(olga).post(f"/feedback/{ops_ticket.pk}/reply", {"reply-body": "x", "reply-then": "close"})
        assert "Unknown follow-up" in r.content.decode()
        assert not Message.objects.exists()

    def test_the_refusal_is_in_chinese_for_a_chinese_operator(self, olga, ops_ticket):
        r = _client(olga, "zh-hans").post(f"/feedback/{ops_ticket.pk}/reply", {"reply-body": ""})
        assert "请先填写回复内容再发送。" in r.content.decode()


@pytest.mark.django_db
class TestNote:
    def test_adds_a_note(self, olga, ops_ticket):
        _client(olga).post(f"/feedback/{ops_ticket.pk}/note", {"note-body": "Call the courier"})
        note = Message.objects.get()
        assert (note.kind, note.body) == (Message.Kind.NOTE, "Call the courier")

    def test_blank_note(self, olga, ops_ticket):
        r = _client(olga).post(f"/feedback/{ops_ticket.pk}/note", {"note-body": ""})
        assert 'data-error="note-body">Write the note before adding it.<' in r.content.decode()
        assert not Message.objects.exists()


@pytest.mark.django_db
class TestWorkflowButtons:
    def test_an_allowed_move(self, olga, ops_ticket):
        r = _client(olga).post(f"/feedback/{ops_ticket.pk}/transition", {"action": "triage"}, follow=True)
        assert Ticket.objects.get(pk=ops_ticket.pk).status == Status.TRIAGED
        assert "The ticket is now triaged." in _messages(r)

    def test_a_disallowed_move_is_refused_and_nothing_written(self, olga, ops_ticket):
        events = TicketEvent.objects.count()
        r = _client(olga).post(f"/feedback/{ops_ticket.pk}/transition", {"action": "close"}, follow=True)
        assert any("cannot be moved by “Close”" in m for m in _messages(r))
        assert Ticket.objects.get(pk=ops_ticket.pk).status == Status.NEW
        assert TicketEvent.objects.count() == events

    def test_closed_to_in_progress_needs_reopen(self, olga, ops_ticket):
        for action in ("resolve", "close"):
            services.ticket_transition(ticket=ops_ticket, action=action, actor=olga)
        r = _client(olga).post(f"/feedback/{ops_ticket.pk}/transition", {"action": "start"}, follow=True)
        assert any("allowed here: Reopen" in m for m in _messages(r))
        assert Ticket.objects.get(pk=ops_ticket.pk).status == Status.CLOSED

    def test_unknown_action(self, olga, ops_ticket):
        r = _client(olga).post(f"/feedback/{ops_ticket.pk}/transition", {"action": "explode"}, follow=True)
        assert "Unknown action." in _messages(r)


@pytest.mark.django_db
class TestAssignUpdateMerge:
    def test_take(self, olga, ops_ticket):
        r = _client(olga).post(f"/feedback/{ops_ticket.pk}/assign", {"take": "1"}, follow=True)
        assert Ticket.objects.get(pk=ops_ticket.pk).assignee == olga
        assert "You took this ticket." in _messages(r)

    def test_assign_to_someone_outside_the_team_is_refused(self, olga, tom, ops_ticket):
        r = _client(olga).post(
            f"/feedback/{ops_ticket.pk}/assign", {"assign-team": "operations", "assign-assignee": tom.pk}, follow=True
        )
        assert "tom is not in the operations team." in _messages(r)
        assert Ticket.objects.get(pk=ops_ticket.pk).assignee is None

    def test_hand_to_another_team(self, olga, tom, ops_ticket):
        _client(olga).post(f"/feedback/{ops_ticket.pk}/assign", {"assign-team": "tech", "assign-assignee": tom.pk})
        ticket = Ticket.objects.get(pk=ops_ticket.pk)
        assert (ticket.team.code, ticket.assignee) == ("tech", tom)

    def test_set_the_priority_and_the_page_says_who(self, olga, ops_ticket):
        data = {"edit-category": "question", "edit-priority": "urgent", "edit-impact": "one"}
        data |= {"edit-severity": "minor", "edit-difficulty": "easy"}
        r = _client(olga).post(f"/feedback/{ops_ticket.pk}/update", data, follow=True)
        assert Ticket.objects.get(pk=ops_ticket.pk).priority == "urgent"
        assert "Set by olga: normal → urgent." in r.content.decode()

    def test_new_inputs_let_the_matrix_decide_again(self, olga, ops_ticket):
        data = {"edit-category": "question", "edit-priority": "normal", "edit-impact": "all"}
        data |= {"edit-severity": "critical", "edit-difficulty": "hard"}
        _client(olga).post(f"/feedback/{ops_ticket.pk}/update", data)
        assert Ticket.objects.get(pk=ops_ticket.pk).priority == "crisis"

    def test_bad_update_choice(self, olga, ops_ticket):
        r = _client(olga).post(f"/feedback/{ops_ticket.pk}/update", {"edit-priority": "asap"}, follow=True)
        assert "Choose each value from its list." in _messages(r)
        assert not TicketEvent.objects.filter(action="updated").exists()

    def test_merge(self, olga):
        primary, dup = _open(subject="primary"), _open(subject="dup")
        r = _client(olga).post(f"/feedback/{dup.pk}/merge", {"merge-into": primary.pk}, follow=True)
        assert r.redirect_chain[-1][0] == f"/feedback/{primary.pk}/"
        dup.refresh_from_db()
        assert (dup.merged_into_id, dup.status) == (primary.pk, Status.CLOSED)

    @pytest.mark.parametrize(
        ("into", "message"),
        [
            ("self", "A ticket cannot be merged into itself."),
            ("99999", "There is no ticket #99999 in your queues."),
            ("tech", "There is no ticket #{tech} in your queues."),
            ("", "Give the number of the ticket to merge into."),
        ],
    )
    def test_bad_merge_is_refused_and_nothing_written(self, olga, ops_ticket, tech_ticket, into, message):
        into = {"self": str(ops_ticket.pk), "tech": str(tech_ticket.pk)}.get(into, into)
        r = _client(olga).post(f"/feedback/{ops_ticket.pk}/merge", {"merge-into": into}, follow=True)
        assert message.format(tech=tech_ticket.pk) in _messages(r)
        assert not Ticket.objects.filter(merged_into__isnull=False).exists()

    def test_merge_into_a_closed_ticket_is_refused(self, olga, ops_ticket):
        other = _open(subject="closed one")
        for action in ("resolve", "close"):
            services.ticket_transition(ticket=other, action=action, actor=olga)
        r = _client(olga).post(f"/feedback/{ops_ticket.pk}/merge", {"merge-into": other.pk}, follow=True)
        assert "Cannot merge into a closed ticket." in _messages(r)
        assert Ticket.objects.get(pk=ops_ticket.pk).merged_into is None


# --- canned replies -----------------------------------------------------------------


@pytest.mark.django_db
class TestCannedReplies:
    @pytest.fixture
    def reply(self, db):
        return CannedReply.objects.create(
            name="Thanks",
            body="您好 {{ customer_name }}，关于工单 #{{ ticket_id }}「{{ subject }}」<已收到> & 处理中。"
            "—— {{ operator_name }}",
        )

    def test_renders_the_variables_as_plain_text(self, olga, reply):
        ticket = _open(customer=CustomerFactory(nickname="小美 & Co"), subject="Refund <now>")
        olga.first_name, olga.last_name = "Olga", "Li"
        text = canned_services.canned_reply_render(reply=reply, ticket=ticket, operator=olga)
        assert text == f"您好 小美 & Co，关于工单 #{ticket.pk}「Refund <now>」<已收到> & 处理中。—— Olga Li"

    def test_operator_without_a_name_signs_with_the_username(self, olga, reply, ops_ticket):
        assert canned_services.canned_reply_render(reply=reply, ticket=ops_ticket, operator=olga).endswith("—— olga")

    @pytest.mark.parametrize(
        ("body", "needle"),
        [
            ("Hi {{ custmer_name }}", "unknown variables: custmer_name"),
            ("{% if %}", "cannot be used"),
            ("{% include 'base.html' %}", "cannot be used"),
            ("{% load static %}", "cannot be used"),
        ],
    )
    def test_a_bad_body_is_a_clear_error(self, ops_ticket, olga, body, needle):
        bad = CannedReply.objects.create(name="Bad", body=body)
        with pytest.raises(Exception) as exc:
            canned_services.canned_reply_render(reply=bad, ticket=ops_ticket, operator=olga)
        assert exc.value.code == "canned_reply_invalid" and needle in exc.value.message

    def test_the_endpoint_fills_the_reply(self, olga, reply, ops_ticket):
        r = _client(olga).get(f"/feedback/{ops_ticket.pk}/canned/{reply.pk}")
        assert r.status_code == 200
        assert (
            r.json()["body"]
            == f"您好 customer，关于工单 #{ops_ticket.pk}「Where is my parcel」<已收到> & 处理中。—— olga"
        )

    def test_the_endpoint_says_what_is_wrong(self, olga, ops_ticket):
        bad = CannedReply.objects.create(name="Bad", body="Hi {{ nobody }}")
        r = _client(olga).get(f"/feedback/{ops_ticket.pk}/canned/{bad.pk}")
        assert r.status_code == 400 and r.json()["error"]["code"] == "canned_reply_invalid"

    def test_inactive_or_unknown_reply_is_404(self, olga, reply, ops_ticket):
        reply.is_active = False
        reply.save()
        assert _client(olga).get(f"/feedback/{ops_ticket.pk}/canned/{reply.pk}").status_code == 404

    def test_without_javascript_the_page_fills_the_textarea(self, olga, reply, ops_ticket):
        html = _client(olga).get(f"/feedback/{ops_ticket.pk}/?canned={reply.pk}").content.decode()
        textarea = re.search(r'<textarea name="reply-body".*?</textarea>', html, re.S).group(0)
        assert f"关于工单 #{ops_ticket.pk}「Where is my parcel」&lt;已收到&gt;" in textarea

    def test_a_viewer_cannot_use_them(self, vera, reply, ops_ticket):
        assert _client(vera).get(f"/feedback/{ops_ticket.pk}/canned/{reply.pk}").status_code == 403
        html = _client(vera).get(f"/feedback/{ops_ticket.pk}/?canned={reply.pk}").content.decode()
        assert "关于工单" not in html


# --- attachments --------------------------------------------------------------------


@pytest.mark.django_db
class TestAttachments:
    @pytest.fixture
    def attachment(self, db):
        ticket = _open(attachments=[services.AttachmentIn("screen.png", "image/png", PNG)])
        return ticket.attachments.get()

    def test_an_operator_of_the_team_downloads_it(self, olga, attachment):
        r = _client(olga).get(f"/feedback/attachments/{attachment.pk}")
        assert r.status_code == 200
        assert b"".join(r.streaming_content) == PNG
        assert r["Content-Disposition"].startswith("attachment;") and "screen.png" in r["Content-Disposition"]
        assert r["Content-Type"] == "image/png"

    def test_the_ticket_page_links_the_private_view_not_media(self, olga, attachment):
        html = _client(olga).get(f"/feedback/{attachment.ticket_id}/").content.decode()
        assert f'href="/feedback/attachments/{attachment.pk}"' in html and "/media/" not in html

    def test_a_viewer_of_the_team_may_download(self, vera, attachment):
        assert _client(vera).get(f"/feedback/attachments/{attachment.pk}").status_code == 200

    def test_another_team_gets_404(self, tom, attachment):
        assert _client(tom).get(f"/feedback/attachments/{attachment.pk}").status_code == 404

    def test_signed_out_goes_to_login(self, attachment):
        assert Client().get(f"/feedback/attachments/{attachment.pk}").status_code == 302

    def test_a_merged_duplicates_file_is_reachable_from_the_primary(self, olga, attachment):
        primary = _open(subject="primary")
        services.ticket_merge(duplicate=attachment.ticket, into=primary, actor=olga)
        html = _client(olga).get(f"/feedback/{primary.pk}/").content.decode()
        assert f'href="/feedback/attachments/{attachment.pk}"' in html


# --- a new ticket -------------------------------------------------------------------


def _new(**kw) -> dict:
    return {
        "source": "service",
        "customer": "",
        "category": "question",
        "subject": "Called about a refund",
        "body": "The customer called at 10:00",
        "priority": "",
        "impact": "one",
        "severity": "minor",
        "difficulty": "easy",
        **kw,
    }


@pytest.mark.django_db
class TestNewTicket:
    def test_form_for_operators_403_for_viewers(self, olga, vera):
        assert _client(olga).get("/feedback/new").status_code == 200
        assert _client(vera).get("/feedback/new").status_code == 403

    def test_opens_a_ticket_with_customer_and_attachment(self, olga):
        from django.core.files.uploadedfile import SimpleUploadedFile

        customer = CustomerFactory(external_id="c-9")
        upload = SimpleUploadedFile("photo.png", PNG, content_type="image/png")
        r = _client(olga).post("/feedback/new", _new(customer="c-9", source="social", attachments=upload))
        ticket = Ticket.objects.get()
        assert r.status_code == 302 and r["Location"] == f"/feedback/{ticket.pk}/"
        assert (ticket.customer, ticket.source, ticket.team.code) == (customer, "social", "operations")
        assert ticket.attachments.get().name == "photo.png"
        assert TicketEvent.objects.get(ticket=ticket, action="opened").actor == olga

    def test_a_given_priority_is_kept(self, olga):
        _client(olga).post("/feedback/new", _new(priority="urgent"))
        assert Ticket.objects.get().priority_basis == {"given": "urgent"}

    def test_routed_to_a_queue_the_operator_does_not_see(self, olga):
        r = _client(olga).post("/feedback/new", _new(category="complaint"), follow=True)
        assert r.redirect_chain[-1][0] == "/feedback/"
        ticket = Ticket.objects.get()
        assert f"Ticket #{ticket.pk} opened for tech." in _messages(r)

    def test_unknown_customer(self, olga):
        r = _client(olga).post("/feedback/new", _new(customer="ghost"))
        assert 'data-error="customer">No customer has the external id “ghost”.<' in r.content.decode()
        assert not Ticket.objects.exists()

    def test_blank_subject(self, olga):
        r = _client(olga).post("/feedback/new", _new(subject="  "))
        assert 'data-error="subject"' in r.content.decode()
        assert not Ticket.objects.exists()

    def test_oversized_upload(self, olga, settings):
        from django.core.files.uploadedfile import SimpleUploadedFile

        settings.FEEDBACK_ATTACHMENT_MAX_BYTES = 20
        upload = SimpleUploadedFile("big.png", PNG, content_type="image/png")
        r = _client(olga).post("/feedback/new", _new(attachments=upload))
        assert 'data-error="attachments">Attachment big.png is larger than 20 bytes.<' in r.content.decode()
        assert not Ticket.objects.exists() and not Attachment.objects.exists()

    @pytest.mark.parametrize(
        ("name", "content_type", "content"),
        [("run.exe", "application/x-msdownload", b"MZ\x90\x00"), ("fake.png", "image/png", b"GIF89a....")],
    )
    def test_disallowed_upload(self, olga, name, content_type, content):
        from django.core.files.uploadedfile import SimpleUploadedFile

        upload = SimpleUploadedFile(name, content, content_type=content_type)
        r = _client(olga).post("/feedback/new", _new(attachments=upload))
        assert f'data-error="attachments">Attachment {name}: type {content_type} is not allowed' in r.content.decode()
        assert not Ticket.objects.exists() and not Attachment.objects.exists()

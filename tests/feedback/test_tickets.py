"""Ticket services: open (priority model, VIP routing, idempotency, attachments), the
workflow table, replies and notes, the customer's reply, assignment, merge, history."""

from datetime import UTC, datetime, timedelta

import pytest

from core.errors import ApplicationError
from feedback import workflow
from feedback.models import (
    Attachment,
    Message,
    Priority,
    PriorityRule,
    SlaTarget,
    Status,
    Team,
    Ticket,
    TicketEvent,
    VipRule,
)
from feedback.services import tickets as services
from segments.models import CustomerScore, SegmentRun
from tests.segments.factories import ensure_rule_set
from tests.users.factories import CustomerFactory

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai


def _open(**kw):
    args = {
        "customer": None,
        "category": "question",
        "subject": "Cannot log in",
        "body": "It says error 500",
        "now": NOW,
    }
    return services.ticket_open(**{**args, **kw}).ticket


@pytest.fixture
def operator(make_user):
    user = make_user("operator", username="op1")
    Team.objects.get(code="operations").members.add(user)
    return user


@pytest.mark.django_db
class TestOpen:
    def test_opens_with_both_targets_routed_to_the_category_team(self):
        ticket = _open(category="complaint")
        assert ticket.status == Status.NEW
        assert ticket.team.code == "tech"
        assert {t.kind for t in ticket.sla_targets.all()} == {"first_response", "resolution"}
        assert TicketEvent.objects.filter(ticket=ticket, action="opened").count() == 1

    def test_matrix_decides_when_no_priority_is_given(self):
        ticket = _open(impact="all", severity="critical", difficulty="hard")
        assert ticket.priority == Priority.CRISIS
        assert ticket.priority_basis["matrix"] == {
            "impact": "all",
            "severity": "critical",
            "difficulty": "hard",
            "priority": "crisis",
        }

    def test_admin_edited_matrix_cell_wins(self):
        PriorityRule.objects.filter(impact="one", severity="minor", difficulty="easy").update(priority="high")
        assert _open().priority == Priority.HIGH

    def test_a_given_priority_is_kept_and_said(self):
        ticket = _open(priority="low")
        assert (ticket.priority, ticket.priority_basis) == ("low", {"given": "low"})

    def test_vip_customer_is_raised_and_the_ticket_says_why(self):
        customer = CustomerFactory()
        run = SegmentRun.objects.create(status="published", published_at=NOW, as_of=NOW, rule_set=ensure_rule_set())
        CustomerScore.objects.create(run=run, customer=customer, tier="super_vip", rfm_group="general")
        VipRule.objects.all().delete()
        VipRule.objects.create(name="VIP", tiers=["super_vip"], raise_by=2, max_priority="urgent")
        ticket = _open(customer=customer)  # matrix: normal
        assert ticket.priority == Priority.URGENT
        assert ticket.priority_basis["vip"] == {
            "rule": "VIP",
            "tier": "super_vip",
            "rfm_group": "",
            "from": "normal",
            "to": "urgent",
        }

    def test_idempotency_key_replays_the_first_ticket(self):
        first = services.ticket_open(customer=None, category="question", subject="S", body="B", idempotency_key="k1")
        again = services.ticket_open(customer=None, category="question", subject="S", body="B", idempotency_key="k1")
        assert (again.ticket.pk, again.replayed) == (first.ticket.pk, True)
        assert Ticket.objects.count() == 1

    def test_idempotency_key_with_another_ticket_is_refused(self):
        services.ticket_open(customer=None, category="question", subject="S", body="B", idempotency_key="k1")
        with pytest.raises(ApplicationError) as exc:
            services.ticket_open(customer=None, category="question", subject="S", body="other", idempotency_key="k1")
        assert exc.value.code == "idempotency_key_reused"
        assert Ticket.objects.count() == 1

    @pytest.mark.parametrize(
        ("kw", "code"),
        [
            ({"subject": "  "}, "blank"),
            ({"body": ""}, "blank"),
            ({"category": "rant"}, "invalid_choice"),
            ({"priority": "asap"}, "invalid_choice"),
            (
                {"attachments": [services.AttachmentIn("x.exe", "application/x-msdownload", b"MZ")]},
                "attachment_type_not_allowed",
            ),
            (
                {"attachments": [services.AttachmentIn("fake.png", "image/png", b"GIF89a....")]},
                "attachment_type_not_allowed",
            ),
            (
                {"attachments": [services.AttachmentIn("big.txt", "text/plain", b"a" * (10 * 1024 * 1024 + 1))]},
                "attachment_too_large",
            ),
            ({"attachments": [services.AttachmentIn("../etc.txt", "text/plain", b"a")]}, "attachment_invalid"),
        ],
    )
    def test_bad_input_is_refused_and_nothing_written(self, kw, code):
        with pytest.raises(ApplicationError) as exc:
            _open(**kw)
        assert exc.value.code == code
        assert (Ticket.objects.count(), Attachment.objects.count(), SlaTarget.objects.count()) == (0, 0, 0)

    def test_attachment_is_stored_through_the_storage_api(self, settings, tmp_path):
        settings.MEDIA_ROOT = tmp_path
        ticket = _open(attachments=[services.AttachmentIn("shot.png", "image/png", PNG)])
        att = ticket.attachments.get()
        assert (att.name, att.size, att.content_type) == ("shot.png", len(PNG), "image/png")
        with att.file.open("rb") as f:
            assert f.read() == PNG


@pytest.mark.django_db
class TestWorkflow:
    def test_every_declared_transition_works_and_every_other_is_refused(self):
        statuses = [s.value for s in Status]
        for action, (sources, to) in workflow.TRANSITIONS.items():
            for status in statuses:
                ticket = _open()
                Ticket.objects.filter(pk=ticket.pk).update(status=status)
                ticket.refresh_from_db()
                if status in sources:
                    assert services.ticket_transition(ticket=ticket, action=action, now=NOW).status == to
                else:
                    with pytest.raises(ApplicationError) as exc:
                        services.ticket_transition(ticket=ticket, action=action, now=NOW)
                    assert exc.value.code == "transition_not_allowed", (action, status)
                    ticket.refresh_from_db()
                    assert ticket.status == status

    def test_closed_to_in_progress_needs_reopen(self):
        ticket = _open()
        for action in ("start", "resolve", "close"):
            services.ticket_transition(ticket=ticket, action=action, now=NOW)
        with pytest.raises(ApplicationError) as exc:
            services.ticket_transition(ticket=ticket, action="start", now=NOW)
        assert exc.value.code == "transition_not_allowed"
        assert exc.value.details["allowed"] == ["reopen"]
        assert services.ticket_transition(ticket=ticket, action="reopen", now=NOW).status == Status.IN_PROGRESS

    def test_unknown_action(self):
        with pytest.raises(ApplicationError) as exc:
            services.ticket_transition(ticket=_open(), action="explode")
        assert exc.value.code == "invalid_action"

    def test_history_records_who_moved_it_from_what_to_what(self, operator):
        ticket = _open()
        services.ticket_transition(ticket=ticket, action="triage", actor=operator, now=NOW)
        event = TicketEvent.objects.get(ticket=ticket, action="triage")
        assert (event.actor, event.changes) == (operator, {"status": ["new", "triaged"]})


@pytest.mark.django_db
class TestReplies:
    def test_first_reply_stops_first_response_and_starts_work(self, operator):
        ticket = _open()
        services.ticket_reply(ticket=ticket, body="Try again", actor=operator, now=NOW + timedelta(minutes=5))
        ticket.refresh_from_db()
        assert ticket.status == Status.IN_PROGRESS
        assert ticket.first_responded_at == NOW + timedelta(minutes=5)
        first = ticket.sla_targets.get(kind="first_response")
        assert first.state == SlaTarget.State.MET
        assert ticket.sla_targets.get(kind="resolution").state == SlaTarget.State.RUNNING

    def test_reply_then_wait_pauses_the_clock(self, operator):
        ticket = _open()
        services.ticket_reply(ticket=ticket, body="Which phone?", actor=operator, then="wait", now=NOW)
        ticket.refresh_from_db()
        assert ticket.status == Status.WAITING
        assert ticket.sla_targets.get(kind="resolution").state == SlaTarget.State.PAUSED

    def test_reply_to_a_closed_ticket_is_refused(self, operator):
        ticket = _open()
        for action in ("resolve", "close"):
            services.ticket_transition(ticket=ticket, action=action, now=NOW)
        with pytest.raises(ApplicationError) as exc:
            services.ticket_reply(ticket=ticket, body="late", actor=operator)
        assert exc.value.code == "ticket_closed"
        assert Message.objects.count() == 0

    def test_customer_reply_resumes_a_waiting_ticket_and_is_idempotent(self, operator):
        ticket = _open()
        services.ticket_reply(ticket=ticket, body="Which phone?", actor=operator, then="wait", now=NOW)
        later = NOW + timedelta(hours=1)
        first = services.ticket_customer_reply(ticket=ticket, body="iPhone", idempotency_key="m1", now=later)
        again = services.ticket_customer_reply(ticket=ticket, body="iPhone", idempotency_key="m1", now=later)
        ticket.refresh_from_db()
        assert ticket.status == Status.IN_PROGRESS
        assert ticket.sla_targets.get(kind="resolution").state == SlaTarget.State.RUNNING
        assert (again.message.pk, again.replayed) == (first.message.pk, True)
        assert Message.objects.filter(kind="customer").count() == 1

    def test_customer_reply_reopens_a_resolved_ticket(self):
        ticket = _open()
        services.ticket_transition(ticket=ticket, action="resolve", now=NOW)
        services.ticket_customer_reply(ticket=ticket, body="Still broken", idempotency_key="m2")
        ticket.refresh_from_db()
        assert (ticket.status, ticket.resolved_at) == (Status.IN_PROGRESS, None)

    def test_note_is_internal(self, operator):
        ticket = _open()
        note = services.ticket_note(ticket=ticket, body="Customer is a reseller", actor=operator)
        assert note.kind == Message.Kind.NOTE
        ticket.refresh_from_db()
        assert ticket.first_responded_at is None  # a note is no response to the customer


@pytest.mark.django_db
class TestAssignAndMerge:
    def test_assign_needs_a_team_member(self, operator, make_user):
        ticket = _open()
        outsider = make_user("operator", username="op2")
        with pytest.raises(ApplicationError) as exc:
            services.ticket_assign(
                ticket=ticket, team=Team.objects.get(code="operations"), assignee=outsider, actor=operator
            )
        assert exc.value.code == "assignee_not_in_team"
        ticket.refresh_from_db()
        assert ticket.assignee is None

    def test_a_viewer_cannot_be_assigned(self, make_user):
        viewer = make_user("viewer", username="v1")
        with pytest.raises(ApplicationError) as exc:
            services.ticket_assign(ticket=_open(), team=None, assignee=viewer, actor=None)
        assert exc.value.code == "assignee_not_allowed"

    def test_bulk_assign_all_or_nothing(self, operator):
        a, b = _open(), _open(subject="other")
        team = Team.objects.get(code="operations")
        assert services.tickets_assign_bulk(ticket_ids=[a.pk, b.pk], team=team, assignee=operator, actor=operator) == 2
        assert set(Ticket.objects.values_list("assignee", flat=True)) == {operator.pk}
        with pytest.raises(ApplicationError) as exc:
            services.tickets_assign_bulk(ticket_ids=[a.pk, 999999], team=None, assignee=None, actor=operator)
        assert exc.value.code == "not_found"
        assert set(Ticket.objects.values_list("assignee", flat=True)) == {operator.pk}

    def test_merge_keeps_both_histories(self, operator):
        primary, dup = _open(subject="Login fails"), _open(subject="Cannot log in again")
        services.ticket_reply(ticket=dup, body="On it", actor=operator)
        services.ticket_merge(duplicate=dup, into=primary, actor=operator)
        dup.refresh_from_db()
        assert (dup.status, dup.merged_into_id) == (Status.CLOSED, primary.pk)
        assert TicketEvent.objects.filter(ticket=dup, action="replied").exists()
        assert TicketEvent.objects.filter(ticket=dup, action="merged_into").exists()
        assert TicketEvent.objects.filter(ticket=primary, action="merged").exists()
        assert Message.objects.filter(ticket=dup).count() == 1  # the duplicate's conversation stays its own

    @pytest.mark.parametrize("case", ["self", "twice", "into_merged"])
    def test_bad_merges(self, case):
        a, b, c = _open(), _open(), _open()
        if case == "self":
            args = {"duplicate": a, "into": a}
        else:
            services.ticket_merge(duplicate=b, into=a, actor=None)
            args = {"duplicate": b, "into": c} if case == "twice" else {"duplicate": c, "into": b}
        before = TicketEvent.objects.count()
        with pytest.raises(ApplicationError) as exc:
            services.ticket_merge(**args, actor=None)
        assert exc.value.code == "merge_invalid"
        assert TicketEvent.objects.count() == before

    def test_priority_change_keeps_a_record(self, operator):
        ticket = _open()
        services.ticket_update(ticket=ticket, actor=operator, priority="urgent", now=NOW)
        ticket.refresh_from_db()
        assert ticket.priority_basis["set_by"]["to"] == "urgent"
        assert TicketEvent.objects.get(ticket=ticket, action="updated").changes == {"priority": ["normal", "urgent"]}

"""The demo's ticket queue (``seed_demo_tickets``): written through the ticket services,
every status, some breached, CSAT answers, the demo operators in the teams; once."""

import pytest
from django.core.management import call_command

from core.models import AuditEntry
from feedback.models import CannedReply, CsatResponse, Message, SlaTarget, Status, Team, Ticket, TicketEvent
from tests.users.factories import CustomerFactory

pytestmark = pytest.mark.django_db

END = "2026-03-20T10:00:00+08:00"


@pytest.fixture
def demo_accounts(make_user):
    make_user("admin", username="admin")
    make_user("operator", username="operator")
    make_user("community_manager", username="community")
    CustomerFactory.create_batch(40)


def test_the_demo_queue_has_every_status_and_its_history(demo_accounts):
    call_command("seed_demo_tickets", "--tickets", "80", "--now", END)
    tickets = Ticket.objects.all()
    assert 80 <= tickets.count() <= 82
    assert set(tickets.values_list("status", flat=True)) == set(Status.values)
    assert set(tickets.values_list("team__code", flat=True)) == {"product", "tech", "operations"}
    assert len(set(tickets.values_list("priority", flat=True))) >= 3
    # Through the services: each ticket has its targets and its "opened" history entry.
    assert not tickets.filter(sla_targets__isnull=True).exists()
    assert TicketEvent.objects.filter(action="opened").count() == tickets.count()
    assert Message.objects.filter(kind="reply").exists() and Message.objects.filter(kind="customer").exists()
    assert SlaTarget.objects.filter(state="breached").exists()  # resolved late
    assert tickets.filter(merged_into__isnull=False).count() == 1
    assert CsatResponse.objects.exists()
    assert not CsatResponse.objects.exclude(ticket__status__in=[Status.RESOLVED, Status.CLOSED]).exists()
    # The queue shows the operator something: they are in teams, with tickets assigned.
    assert Team.objects.filter(members__username="operator").count() == 3
    assert tickets.filter(assignee__username="operator").exists()
    assert AuditEntry.objects.filter(action="team.change").count() == 3
    assert CannedReply.objects.count() == 4


def test_a_second_run_adds_nothing_and_delete_clears_the_queue(demo_accounts):
    call_command("seed_demo_tickets", "--tickets", "20", "--now", END)
    count, audits = Ticket.objects.count(), AuditEntry.objects.count()
    call_command("seed_demo_tickets", "--now", END)
    assert Ticket.objects.count() == count and AuditEntry.objects.count() == audits
    call_command("seed_demo_tickets", "--delete")
    assert not Ticket.objects.exists() and not Message.objects.exists()

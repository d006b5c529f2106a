"""The escalation sweep through a real Celery worker process on the configured broker
(Redis when REDIS_URL is set, the file-system broker otherwise)."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from feedback.models import Escalation, Priority, Ticket
from feedback.services.tickets import ticket_open
from feedback.tasks import sla_escalation_sweep_task


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_breach_escalates_once_in_a_real_worker(worker_queue):
    # Urgent: first response within 24 h around the clock; opened 25 h ago, so it is overdue.
    opened = timezone.now() - timedelta(hours=25)
    ticket = ticket_open(
        customer=None, category="complaint", subject="Checkout down", body="500 on pay", priority="urgent", now=opened
    ).ticket
    for _ in range(2):  # two runs of the job: the breach is escalated once
        sla_escalation_sweep_task.delay()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not Escalation.objects.filter(ticket=ticket, level="breach").exists():
        time.sleep(0.5)
    time.sleep(2)  # let the second run finish too
    # Each (target, level) once. The breach raised urgent to crisis, whose resolution target
    # (24 h) the 25 h already counted also exceed: that one is warned and breached too.
    assert sorted(Escalation.objects.filter(ticket=ticket).values_list("target", "level")) == [
        ("first_response", "breach"),
        ("first_response", "warning"),
        ("resolution", "breach"),
        ("resolution", "warning"),
    ]
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.priority == Priority.CRISIS  # never past crisis
    assert ticket.priority_basis["escalations"][0]["from"] == "urgent"

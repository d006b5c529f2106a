"""The themes job (feedback.tasks): groups the last two weeks' tickets, records
its run with the counts, does nothing new on a second run, and steps aside while
another run holds the lock."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from core.models import JobRun
from feedback.models import Theme, Ticket
from feedback.tasks import themes_suggest_task
from tests.feedback.factories import TicketFactory

pytestmark = pytest.mark.django_db

JOB = "feedback.themes_suggest"


@pytest.fixture(autouse=True)
def _no_lock_left():
    cache.delete(f"job-lock:{JOB}")
    yield
    cache.delete(f"job-lock:{JOB}")


def test_the_task_groups_recent_tickets_and_records_its_run():
    now = timezone.now()
    for subject in ["打开APP就闪退", "app一打开就闪退，重装也没用", "更新后APP打开闪退"]:
        TicketFactory(subject=subject, body=subject, created_at=now - timedelta(days=3))
    TicketFactory(subject="更新后打开闪退", body="更新后打开闪退", created_at=now - timedelta(days=20), status="closed")
    assert themes_suggest_task.name == JOB
    counts = themes_suggest_task()
    assert counts["themes_created"] == 1 and counts["grouped"] == 3 and counts["tickets_read"] == 3
    run = JobRun.objects.get(job=JOB)
    assert run.status == JobRun.Status.SUCCEEDED
    assert run.counts["themes_created"] == 1 and "seconds" in run.counts
    assert Ticket.objects.filter(theme__isnull=False).count() == 3

    again = themes_suggest_task()
    assert again["themes_created"] == 0 and again["joined"] == 0
    assert Theme.objects.count() == 1


def test_the_task_steps_aside_while_another_run_holds_the_lock():
    TicketFactory.create_batch(2, subject="求深色模式", body="求深色模式", created_at=timezone.now())
    assert cache.add(f"job-lock:{JOB}", "1", timeout=60)
    assert themes_suggest_task() is None
    assert not Theme.objects.exists()
    assert JobRun.objects.get(job=JOB).status == JobRun.Status.SKIPPED

"""Re-queues the rows side-effect tasks skipped or failed (failed job runs that name ids)."""

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from core.models import JobRun
from core.services import failed_jobs_requeue


class Command(BaseCommand):
    help = "Queue again the ids of failed side-effect task runs (each failed run once)."

    def add_arguments(self, parser):
        parser.add_argument("--job", help="only runs of this task, e.g. incentives.order_rules_apply")
        parser.add_argument("--days", type=int, default=30, help="only runs that failed in the last N days")

    def handle(self, *args, job=None, days=30, **options):
        runs = JobRun.objects.filter(
            status=JobRun.Status.FAILED, started_at__gte=timezone.now() - timedelta(days=days)
        ).order_by("started_at")
        if job:
            runs = runs.filter(job=job)
        with transaction.atomic():
            requeued = failed_jobs_requeue(runs)
        self.stdout.write(
            f"re-queued {len(requeued)} failed run(s): {sum(len(r.counts['failed_ids']) for r in requeued)} id(s)"
        )

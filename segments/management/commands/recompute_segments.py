import json
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from core.errors import ApplicationError
from core.timezones import operator_end_of_day, operator_timezone
from segments import services
from segments.tasks import segments_recompute_task


class Command(BaseCommand):
    help = (
        "Recomputes RFM scores, tiers, stages, churn predictions and segments. By default the work is "
        "queued to the Celery workers (fanned out in chunks); --sync runs it here."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--as-of",
            help=(
                "compute as of this date (YYYY-MM-DD, the end of that day in the operators' timezone, "
                "OPS_DEFAULT_CUSTOMER_TIMEZONE) or ISO datetime with a UTC offset"
            ),
        )
        parser.add_argument("--sync", action="store_true", help="run in this process instead of on the workers")
        parser.add_argument(
            "--incremental", action="store_true", help="only customers whose orders changed since the last run"
        )
        parser.add_argument("--chunk-size", type=int, default=100_000, help="customers per chunk task")

    def handle(self, *args, as_of=None, sync=False, incremental=False, chunk_size=100_000, **options):
        when = None
        if as_of:
            try:
                day = datetime.strptime(as_of, "%Y-%m-%d").date() if len(as_of) == 10 else None
                # A plain date: its last instant, that day in the operators' timezone.
                when = operator_end_of_day(day) if day else datetime.fromisoformat(as_of)
            except ValueError:
                raise CommandError(f"--as-of {as_of!r} is not a date (YYYY-MM-DD) or an ISO datetime.") from None
            if when.tzinfo is None:
                raise CommandError("--as-of needs a UTC offset when it has a time.")
            if day == timezone.localdate(timezone=operator_timezone()):
                when = timezone.now()  # "as of today" means as of now, not the end of today
        try:
            if incremental:
                changed = services.recompute_incremental()
                self.stdout.write(json.dumps({"incremental": True, "customers_changed": changed}))
            elif sync:
                run = services.recompute_sync(as_of=when, chunk_size=chunk_size)
                self.stdout.write(
                    json.dumps(
                        {
                            "run": run.pk,
                            "status": run.status,
                            "as_of": run.as_of.isoformat(),
                            "phases": run.phases,
                            "counts": run.counts,
                        }
                    )
                )
            else:
                run_id = segments_recompute_task.delay(when.isoformat() if when else None, chunk_size).id
                self.stdout.write(f"queued recompute (task {run_id}); progress shows on the dashboard")
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from core.services import job_run
from core.timezones import operator_day_bounds
from incentives import services
from incentives.models import RULE_EVENT_TYPES
from users.models import Event, Order


class Command(BaseCommand):
    help = (
        "Applies the earning rules to orders and events already stored (a backfill, e.g. after adding a rule "
        "or loading demo data). Safe to run twice: every rule entry has a deterministic idempotency key."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--since",
            help="only orders and events at or after the start of this day (YYYY-MM-DD) in the operators' timezone",
        )
        parser.add_argument("--chunk", type=int, default=5000)

    def handle(self, *args, **options):
        # Recorded as a job run, so the dashboard's "last job runs" lists the backfill.
        with job_run("incentives.rules_backfill", lock_seconds=6 * 3600) as run:
            run.counts = self._backfill(since=options.get("since"), chunk=options.get("chunk") or 5000)

    def _backfill(self, *, since=None, chunk=5000) -> dict:
        start = None
        if since:
            try:
                start = operator_day_bounds(datetime.strptime(since, "%Y-%m-%d").date())[0]
            except ValueError:
                raise CommandError(f"--since {since!r} is not a date (YYYY-MM-DD).") from None
        orders = Order.objects.order_by("id")
        events = Event.objects.filter(type__in=set(RULE_EVENT_TYPES.values())).order_by("id")
        if start:
            orders, events = orders.filter(occurred_at__gte=start), events.filter(occurred_at__gte=start)
        written, looked_at = 0, {}
        for name, qs, apply in (
            ("orders", orders, services.order_rules_apply),
            ("events", events, services.event_rules_apply),
        ):
            ids = list(qs.values_list("id", flat=True))
            next_report = report_every = max(chunk, len(ids) // 10)  # about ten progress lines per kind
            for i in range(0, len(ids), chunk):
                key = "order_ids" if name == "orders" else "event_ids"
                written += apply(**{key: ids[i : i + chunk]})
                done = min(i + chunk, len(ids))
                if next_report <= done < len(ids):
                    self.stdout.write(f"{name}: {done:,} / {len(ids):,}")
                    next_report += report_every
            self.stdout.write(f"{name}: {len(ids)} looked at")
            looked_at[name] = len(ids)
        self.stdout.write(f"{written} ledger entries written")
        return {**looked_at, "entries": written}

import json

from django.core.management.base import BaseCommand

from incentives.services import ledger_reconcile
from users.models import Customer


class Command(BaseCommand):
    help = "Proves every cached points balance equals the sum of its ledger entries. Exits 1 on any drift."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the report as one JSON line")

    def handle(self, *args, **options):
        drift = ledger_reconcile()
        names = dict(
            Customer.objects.filter(pk__in=[r["customer_id"] for r in drift[:100]]).values_list("id", "external_id")
        )
        for row in drift:
            row["external_id"] = names.get(row["customer_id"])
        if options["json"]:
            self.stdout.write(json.dumps({"drift_accounts": len(drift), "drift": drift[:100]}, default=str))
        elif drift:
            self.stdout.write(f"{len(drift)} account(s) drift from their ledger:")
            for row in drift[:100]:
                self.stdout.write(
                    f"  customer {row['external_id']} (id {row['customer_id']}): "
                    f"balance {row['balance']}, ledger sum {row['ledger']}, "
                    f"latest balance_after {row['last_after']}"
                )
        else:
            self.stdout.write("OK: every balance equals the sum of its entries.")
        if drift:
            raise SystemExit(1)

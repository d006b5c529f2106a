"""Partial-match customer search stays fast at a million customers: trigram GIN
indexes (pg_trgm) on the expressions the search filters by — ``UPPER(col::text)``
is what Django's ``icontains`` compiles to on PostgreSQL, and the phone's digits
only, so "136 7849 9498" and "9498" match "+86 136-7849-9498". PostgreSQL only:
SQLite has no pg_trgm and scans (fine at its scale)."""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

# index name → indexed expression (users.selectors.customer_search_q filters by the same ones)
INDEXES = {
    "customer_name_trgm": "UPPER((name)::text)",
    "customer_nickname_trgm": "UPPER((nickname)::text)",
    "customer_extid_trgm": "UPPER((external_id)::text)",
    "customer_email_trgm": "UPPER((email)::text)",
    "customer_phone_digits_trgm": "regexp_replace((phone)::text, '\\D', '', 'g')",
}


def _create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, expression in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON users_customer USING gin (({expression}) gin_trgm_ops)"
        )


def _drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("users", "0005_order_currency_index")]

    operations = [TrigramExtension(), migrations.RunPython(_create, _drop)]

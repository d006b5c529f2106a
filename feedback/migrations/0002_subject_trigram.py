"""The queue at 200,000 tickets (feedback.selectors.pages): a trigram
GIN index on ``UPPER(subject)`` — what ``icontains`` compiles to on PostgreSQL — so a
subject search is both fast and estimated right (ANALYZE keeps statistics for an
indexed expression, and the planner then knows a common word matches many tickets).
The trigram index is PostgreSQL's only: SQLite has no pg_trgm and scans."""

from django.db import migrations

SUBJECT_TRGM = "feedback_ticket_subject_trgm"


def _create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {SUBJECT_TRGM} ON feedback_ticket USING gin ((UPPER((subject)::text)) gin_trgm_ops)"
    )


def _drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {SUBJECT_TRGM}")


class Migration(migrations.Migration):
    # pg_trgm comes from users.0006_customer_search_trigram (0001 depends on it), which owns it.
    dependencies = [("feedback", "0001_initial")]

    operations = [migrations.RunPython(_create, _drop)]

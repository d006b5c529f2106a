"""After a full run: the superseded run's scores go, and the tables are vacuumed."""

from datetime import timedelta

import pytest
from django.db import connection, transaction

from segments import engine, services
from segments.models import CustomerScore

from .factories import AS_OF, ensure_rule_set, generate_history


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_cleanup_deletes_superseded_scores_and_vacuums(is_postgres):
    ensure_rule_set()
    generate_history(customers=40, orders=300)
    first = services.recompute_sync(as_of=AS_OF - timedelta(days=1))
    second = services.recompute_sync(as_of=AS_OF)
    assert set(CustomerScore.objects.values_list("run_id", flat=True)) == {first.pk, second.pk}
    superseded = CustomerScore.objects.filter(run=first).count()

    assert services.superseded_scores_cleanup() == superseded > 30
    assert set(CustomerScore.objects.values_list("run_id", flat=True)) == {second.pk}
    assert services.superseded_scores_cleanup() == 0  # twice is harmless
    if is_postgres:  # the statistics say the vacuum ran: no dead rows left behind
        with connection.cursor() as cur:
            cur.execute("SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = %s", [engine.SCORE])
            assert cur.fetchone() == (True,)


def test_vacuum_is_skipped_inside_a_transaction(db):
    with transaction.atomic():
        assert engine.vacuum(engine.SCORE) is False

"""After a full run: the superseded run's scores go, and the tables are vacuumed."""

from datetime import timedelta

import pytest
from django.db import connection, transaction

from segments import services
from segments.models import CustomerScore
from segments.recompute import sql

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
            cur.execute("SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = %s", [sql.SCORE])
            assert cur.fetchone() == (True,)


def test_vacuum_is_skipped_inside_a_transaction(db):
    with transaction.atomic():
        assert sql.vacuum(sql.SCORE) is False


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_incremental_task_vacuums_after_publishing_its_changes(is_postgres):
    from segments.tasks import segments_recompute_incremental_task

    from .factories import OrderFactory

    ensure_rule_set()
    people = generate_history(customers=30, orders=200)
    services.recompute_sync(as_of=AS_OF)
    if is_postgres:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_stat_reset_single_table_counters(%s::regclass)", [sql.SCORE])
    OrderFactory(customer=people[0], occurred_at=AS_OF - timedelta(hours=2))
    assert segments_recompute_incremental_task() == 1
    if is_postgres:
        with connection.cursor() as cur:
            cur.execute("SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = %s", [sql.SCORE])
            assert cur.fetchone() == (True,)

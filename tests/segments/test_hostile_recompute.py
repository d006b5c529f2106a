"""A stored definition that cannot be evaluated (issue 9, class 3) — saved before the
definition checks existed, or written around them — no longer stops a recompute:
the segment is skipped (its members stay, no size snapshot), the error is recorded in
the run's counts (the admin's run page shows them), every other segment and the run
itself publish. The bad rows are inserted through the ORM, as an old row would be."""

from datetime import timedelta
from decimal import Decimal

import pytest

from segments import services
from segments.models import Segment, SegmentMembership, SegmentRun, SegmentSizeSnapshot
from segments.services import segment_save

from .factories import AS_OF, OrderFactory, generate_history

# Each fails differently: the database's numeric overflow (before the checks, a DataError
# at evaluation), an unhashable field name or op and an unrepresentable date (TypeError
# and OverflowError at compilation, before the checks).
BAD = {
    "overflow": {"field": "monetary", "op": "gt", "value": "1e999999"},
    "list-field": {"op": "and", "conditions": [{"field": ["city"], "op": "eq", "value": "x"}]},
    "far-date": {"field": "signup_at", "op": "lte", "value": "9999-12-31"},
    "dict-op": {"field": "city", "op": {"eq": 1}, "value": "x"},
}


@pytest.fixture
def world(db):
    people = generate_history(customers=60, orders=500, seed=5)
    good = segment_save(name="Frequent", definition={"field": "frequency", "op": "gte", "value": 2})
    for slug, definition in BAD.items():
        Segment.objects.create(slug=slug, name=slug, definition=definition)  # as a row stored before the checks
    return people, good


def test_a_full_recompute_publishes_and_records_the_segments_it_skipped(world):
    _people, good = world
    run = services.recompute_sync(as_of=AS_OF)
    assert run.status == SegmentRun.Status.PUBLISHED
    errors = run.counts["segment_errors"]
    assert set(errors) == set(BAD)
    assert all(message.startswith("DefinitionError: definition") for message in errors.values()), errors
    good.refresh_from_db()
    assert good.size > 0 and good.size == SegmentMembership.objects.filter(segment=good).count()
    snapshots = set(
        SegmentSizeSnapshot.objects.filter(run=run, key__startswith="custom:").values_list("key", flat=True)
    )
    assert snapshots == {"custom:frequent"}
    for slug in BAD:  # skipped: never materialised
        assert Segment.objects.get(slug=slug).computed_at is None


def test_a_second_full_recompute_publishes_too(world):
    first = services.recompute_sync(as_of=AS_OF - timedelta(days=1))
    second = services.recompute_sync(as_of=AS_OF)
    first.refresh_from_db()
    assert first.status == SegmentRun.Status.SUPERSEDED and second.status == SegmentRun.Status.PUBLISHED
    assert set(second.counts["segment_errors"]) == set(BAD)


def test_an_incremental_run_skips_them_too(world):
    people, _good = world
    services.recompute_sync(as_of=AS_OF)
    OrderFactory(customer=people[0], amount=Decimal("99.00"), occurred_at=AS_OF - timedelta(hours=1))
    assert services.recompute_incremental(now=AS_OF) == 1
    run = SegmentRun.objects.get(kind=SegmentRun.Kind.INCREMENTAL)
    assert run.status == SegmentRun.Status.APPLIED, run.error
    assert set(run.counts["segment_errors"]) == set(BAD)


def test_without_bad_segments_the_counts_carry_no_errors(db):
    generate_history(customers=30, orders=200, seed=6)
    segment_save(name="Frequent", definition={"field": "frequency", "op": "gte", "value": 2})
    run = services.recompute_sync(as_of=AS_OF)
    assert run.status == SegmentRun.Status.PUBLISHED and "segment_errors" not in run.counts


def test_the_run_page_in_the_admin_shows_the_skipped_segments(world, client, make_user):
    run = services.recompute_sync(as_of=AS_OF)
    client.force_login(make_user("admin", is_superuser=True))
    response = client.get(f"/admin/segments/segmentrun/{run.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "segment_errors" in page and "overflow" in page and "list-field" in page

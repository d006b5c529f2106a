"""Every admin list stays fast at millions of rows (issue 10): the settings that
make it so are on every registered admin, no list runs a query per row (the query
count is the same at N and 3N rows), and on PostgreSQL nothing counts a big table
in full. bench/admin.py measures the lists at scale."""

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from core.admin_base import EstimatedCountPaginator, ScaledListMixin, estimated_count
from core.models import AuditEntry, JobRun
from core.roles import OPS_APPS
from incentives.models import PointsAccount, PointsEntry
from segments.models import Segment, SegmentMembershipChange, SegmentRun, SegmentSizeSnapshot, StageChange
from tests.segments.factories import ensure_rule_set
from users.models import Customer, Event, Order

pytestmark = pytest.mark.django_db

AT = datetime(2026, 3, 1, tzinfo=UTC)
_seq = count()


def _customers(n):
    start = next(_seq) * 100_000
    return Customer.objects.bulk_create(
        Customer(external_id=f"c{start + i}", name=f"n{i}", channel=["organic", "douyin"][i % 2]) for i in range(n)
    )


def _run():
    return SegmentRun.objects.create(as_of=AT, rule_set=ensure_rule_set(), status="superseded")


def _referred_customers(n):
    customers = _customers(n)
    Customer.objects.filter(pk__in=[c.pk for c in customers[1:]]).update(referred_by=customers[0])


def _orders(n):
    for i, c in enumerate(_customers(n)):
        Order.objects.create(external_id=f"o{c.external_id}", customer=c, amount=i, occurred_at=AT)


def _events(n):
    Event.objects.bulk_create(
        Event(customer=c, type=["login", "checkin"][i % 2], occurred_at=AT, dedupe_key=f"k{c.external_id}")
        for i, c in enumerate(_customers(n))
    )


def _points_entries(n):
    PointsEntry.objects.bulk_create(
        PointsEntry(
            customer=c,
            kind="earn",
            amount=5,
            reason="r",
            source="rule",
            idempotency_key="k",
            balance_after=5,
            created_at=AT,
        )
        for c in _customers(n)
    )


def _stage_changes(n):
    run = _run()
    StageChange.objects.bulk_create(StageChange(customer=c, to_stage="new", at=AT, run=run) for c in _customers(n))


def _membership_changes(n):
    seg = Segment.objects.create(slug=f"s{next(_seq)}", name="s", kind="static")
    SegmentMembershipChange.objects.bulk_create(
        SegmentMembershipChange(segment=seg, customer=c, change="enter", at=AT) for c in _customers(n)
    )


def _snapshots(n):
    run = _run()
    SegmentSizeSnapshot.objects.bulk_create(
        SegmentSizeSnapshot(run=run, as_of=AT + timedelta(days=i), key=f"k{i}", size=i) for i in range(n)
    )


def _users(n):
    for _ in range(n):
        user = get_user_model().objects.create(username=f"u{next(_seq)}")
        user.groups.add(*Group.objects.all()[:2])


MAKERS = {
    Customer: _referred_customers,
    Order: _orders,
    Event: _events,
    PointsEntry: _points_entries,
    PointsAccount: lambda n: PointsAccount.objects.bulk_create(PointsAccount(customer=c) for c in _customers(n)),
    StageChange: _stage_changes,
    SegmentMembershipChange: _membership_changes,
    SegmentSizeSnapshot: _snapshots,
    SegmentRun: lambda n: [_run() for _ in range(n)],
    AuditEntry: lambda n: AuditEntry.objects.bulk_create(
        AuditEntry(actor_label="x", action="a", object_type="users.customer", object_id=str(i)) for i in range(n)
    ),
    JobRun: lambda n: JobRun.objects.bulk_create(JobRun(job="j") for _ in range(n)),
    get_user_model(): _users,
}


def _make(model, n: int) -> None:
    MAKERS[model](n)


BIG = [
    Customer,
    Order,
    Event,
    PointsEntry,
    PointsAccount,
    StageChange,
    SegmentMembershipChange,
    SegmentSizeSnapshot,
    SegmentRun,
    AuditEntry,
    JobRun,
    get_user_model(),
]


# Tables that grow with customers × time: their date filter must not read every row.
HUGE = [Customer, Order, Event, PointsEntry, StageChange, SegmentMembershipChange]


def _ours():
    """The admins of Ops Desk's apps and its accounts (third-party admins like axes keep theirs)."""
    return [(m, a) for m, a in admin.site._registry.items() if m._meta.app_label in [*OPS_APPS, "auth"]]


def _url(model) -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/"


@pytest.fixture
def client(make_user):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(make_user("admin"))
    return client


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_every_registered_admin_uses_the_list_settings_for_scale():
    for model, model_admin in _ours():
        assert isinstance(model_admin, ScaledListMixin), f"{model.__name__}: use core.admin_base.ScaledListMixin"
        assert model_admin.show_full_result_count is False and model_admin.paginator is EstimatedCountPaginator
        assert not model_admin.date_hierarchy or model not in HUGE, f"{model.__name__}: date_hierarchy scans every row"


@pytest.mark.parametrize("model", BIG, ids=lambda m: m.__name__)
def test_a_list_runs_the_same_queries_for_n_and_3n_rows(client, model):
    _make(model, 3)
    url = _url(model)
    _queries(client, url)  # warm: the process's copy of the display names is read once
    first = _queries(client, url)
    _make(model, 6)
    assert _queries(client, url) == first, f"{url} runs a query per row"


def test_every_changelist_answers_with_a_filter_and_a_search(client):
    for model, _admin in _ours():
        url = _url(model)
        assert client.get(url).status_code == 200, url
        assert client.get(url, {"q": "c1"}).status_code == 200, url
    assert client.get(_url(Event), {"type__exact": "login"}).status_code == 200
    assert client.get(_url(Order), {"currency__exact": "CNY"}).status_code == 200


def test_the_searches_by_key_find_the_row(client):
    _make(Event, 2)
    _make(Order, 2)
    event = Event.objects.order_by("pk").first()
    Event.objects.filter(pk=event.pk).update(external_id="ev-1", dedupe_key="x:ev-1")
    r = client.get(_url(Event), {"q": "ev-1"})
    assert list(r.context["cl"].result_list) == [event]
    r = client.get(_url(Event), {"q": event.customer.external_id})
    assert list(r.context["cl"].result_list) == [event]
    order = Order.objects.order_by("pk").first()
    assert list(client.get(_url(Order), {"q": order.external_id}).context["cl"].result_list) == [order]
    assert list(client.get(_url(Order), {"q": order.customer.external_id}).context["cl"].result_list) == [order]


def test_the_type_filter_lists_the_stored_types(client):
    _make(Event, 4)
    r = client.get(_url(Event))
    spec = next(s for s in r.context["cl"].filter_specs if getattr(s, "field_path", "") == "type")
    assert list(spec.lookup_choices) == ["checkin", "login"]


@pytest.mark.postgres
def test_on_postgres_a_big_list_is_counted_by_estimate_not_in_full(client, monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "exact_up_to", 5)
    _make(Event, 40)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE users_event")
    assert estimated_count(Event.objects.all()) == 40
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(_url(Event))
    assert r.status_code == 200 and r.context["cl"].result_count == 40
    counts = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper() and "users_event" in q["sql"]]
    assert counts and all("LIMIT" in sql.upper() for sql in counts), counts
    # Filtered: the planner's estimate, never below the exact part.
    r = client.get(_url(Event), {"type__exact": "login"})
    assert r.context["cl"].result_count >= 6

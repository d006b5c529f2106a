"""Custom segment definitions: each field family selects exactly the expected customers,
bad definitions are refused with the path of the bad part, and saving materialises
members with enter/leave changes."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.test import override_settings
from django.utils import translation

from core.errors import ApplicationError
from incentives.models import Level, PointsAccount
from segments import services
from segments.definitions import MAX_CONDITIONS, MAX_DEPTH, DefinitionError, compile_definition
from segments.models import CustomerScore, Segment, SegmentMembership, SegmentMembershipChange
from segments.services import segment_save, static_segment_upload
from users.models import Customer, CustomerTag

from .factories import AS_OF, CustomerFactory, EventFactory, OrderFactory

NOW = AS_OF
SHANGHAI = ZoneInfo("Asia/Shanghai")  # the operators' timezone (OPS_DEFAULT_CUSTOMER_TIMEZONE)


def cond(field, op, value, **extra):
    return {"field": field, "op": op, "value": value, **extra}


def both(*conditions):
    return {"op": "and", "conditions": list(conditions)}


def either(*conditions):
    return {"op": "or", "conditions": list(conditions)}


def members(definition, *, run_id=None) -> set[str]:
    q = compile_definition(definition, run_id=run_id, now=NOW)
    return set(Customer.objects.filter(q).values_list("external_id", flat=True))


@pytest.fixture
def world(db):
    gold = Level.objects.create(name="Gold-T", threshold=987_001)
    silver = Level.objects.create(name="Silver-T", threshold=987_000)
    c1 = CustomerFactory(
        external_id="c1",
        gender="female",
        city="北京",
        birthday=date(1990, 5, 3),
        signup_at=datetime(2025, 1, 10, tzinfo=UTC),
        consent_sms=False,
    )
    c2 = CustomerFactory(external_id="c2", gender="male", city="上海", signup_at=datetime(2025, 6, 1, tzinfo=UTC))
    c3 = CustomerFactory(
        external_id="c3",
        gender="female",
        city="上海市",
        birthday=date(1988, 12, 24),
        signup_at=datetime(2026, 2, 1, tzinfo=UTC),
        do_not_contact=True,
    )
    c4 = CustomerFactory(external_id="c4", gender="unknown", city="广州", signup_at=datetime(2026, 9, 1, tzinfo=UTC))
    PointsAccount.objects.create(customer=c1, balance=1500, level=gold)
    PointsAccount.objects.create(customer=c3, balance=0, level=silver)
    PointsAccount.objects.create(customer=c4, balance=200)
    CustomerTag.objects.create(customer=c1, tag="vip")
    CustomerTag.objects.create(customer=c3, tag="vip")
    CustomerTag.objects.create(customer=c3, tag="kol")
    for day in (1, 2, 6):
        EventFactory(customer=c1, type="checkin", occurred_at=NOW - timedelta(days=day))
    for day in (1, 3):
        EventFactory(customer=c3, type="checkin", occurred_at=NOW - timedelta(days=day))
    for day in (8, 9, 20, 30, 40):
        EventFactory(customer=c3, type="checkin", occurred_at=NOW - timedelta(days=day))
    EventFactory(customer=c2, type="login", occurred_at=NOW - timedelta(days=1))
    EventFactory(customer=c2, type="checkin", occurred_at=NOW + timedelta(hours=1))  # after "now"
    # Orders: c1 three paid in March (one on the evening of the 31st, operators' time), c2 a refund in March and a
    # paid one in May.
    for at in (
        datetime(2026, 3, 2, tzinfo=UTC),
        datetime(2026, 3, 15, tzinfo=UTC),
        datetime(2026, 3, 31, 23, tzinfo=SHANGHAI),
    ):
        OrderFactory(customer=c1, amount=Decimal("500.00"), occurred_at=at)
    OrderFactory(customer=c2, status="refunded", occurred_at=datetime(2026, 3, 10, tzinfo=UTC))
    OrderFactory(customer=c2, amount=Decimal("80.00"), occurred_at=datetime(2026, 5, 1, tzinfo=UTC))
    OrderFactory(customer=c3, amount=Decimal("20.00"), occurred_at=datetime(2026, 4, 1, tzinfo=UTC))
    return {"c1": c1, "c2": c2, "c3": c3, "c4": c4}


# --- field families ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (cond("gender", "eq", "female"), {"c1", "c3"}),
        (cond("gender", "ne", "female"), {"c2", "c4"}),
        (cond("gender", "in", ["male", "unknown"]), {"c2", "c4"}),
        (cond("city", "contains", "上海"), {"c2", "c3"}),
        (cond("city", "not_in", ["上海", "广州"]), {"c1", "c3"}),
        (cond("signup_at", "between", ["2025-06-01", "2026-02-01"]), {"c2", "c3"}),
        (cond("signup_at", "gte", "2026-02-01T00:00:00+00:00"), {"c3", "c4"}),
        (cond("birthday_month", "eq", 12), {"c3"}),
        (cond("do_not_contact", "eq", True), {"c3"}),
        (cond("consent_sms", "eq", False), {"c1"}),
    ],
)
def test_profile_fields(world, condition, expected):
    assert members(both(condition)) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # Customers without a points account have a balance of 0.
        (cond("points_balance", "eq", 0), {"c2", "c3"}),
        (cond("points_balance", "gte", 1000), {"c1"}),
        (cond("points_balance", "gt", 0), {"c1", "c4"}),
        (cond("points_balance", "lt", 300), {"c2", "c3", "c4"}),
        (cond("points_balance", "lte", 0), {"c2", "c3"}),
        (cond("points_balance", "ne", 0), {"c1", "c4"}),
        (cond("points_balance", "ne", 200), {"c1", "c2", "c3"}),
        (cond("points_balance", "between", [0, 200]), {"c2", "c3", "c4"}),
        (cond("points_balance", "between", [100, 2000]), {"c1", "c4"}),
        (cond("points_balance", "in", [0, 1500]), {"c1", "c2", "c3"}),
        (cond("points_balance", "in", [200]), {"c4"}),
    ],
)
def test_points_balance_counts_a_missing_account_as_zero(world, condition, expected):
    assert members(condition) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (cond("level", "eq", "Gold-T"), {"c1"}),
        (cond("level", "in", ["Gold-T", "Silver-T"]), {"c1", "c3"}),
        (cond("level", "ne", "Gold-T"), {"c2", "c3", "c4"}),
        (cond("tag", "has", "vip"), {"c1", "c3"}),
        (cond("tag", "not_has", "vip"), {"c2", "c4"}),
        (cond("tag", "has", "nobody-has-this"), set()),
    ],
)
def test_level_and_tags(world, condition, expected):
    assert members(condition) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (cond("event", "gte", 3, event_type="checkin", within_days=7), {"c1"}),
        (cond("event", "gte", 2, event_type="checkin", within_days=7), {"c1", "c3"}),
        (cond("event", "gte", 7, event_type="checkin", within_days=60), {"c3"}),
        (cond("event", "eq", 2, event_type="checkin", within_days=7), {"c3"}),
        (cond("event", "eq", 0, event_type="checkin", within_days=7), {"c2", "c4"}),  # c2's is in the future
        (cond("event", "lte", 2, event_type="checkin", within_days=7), {"c2", "c3", "c4"}),
        (cond("event", "lte", 0, event_type="checkin", within_days=7), {"c2", "c4"}),
        (cond("event", "gte", 0, event_type="checkin", within_days=7), {"c1", "c2", "c3", "c4"}),
        (cond("event", "gte", 1, event_type="login", within_days=2), {"c2"}),
    ],
)
def test_event_counts_within_days(world, condition, expected):
    assert members(condition) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (cond("orders", "gte", 3, **{"from": "2026-03-01", "to": "2026-03-31"}), {"c1"}),  # to = the whole 31st
        (cond("orders", "gte", 3, **{"from": "2026-03-01", "to": "2026-03-31T12:00:00+00:00"}), set()),
        (cond("orders", "gte", 1, **{"from": "2026-03-01", "to": "2026-03-31"}), {"c1"}),  # refunds don't count
        (cond("orders", "eq", 0, **{"from": "2026-03-01", "to": "2026-03-31"}), {"c2", "c3", "c4"}),
        (cond("orders", "gte", 1, **{"from": "2026-04-01"}), {"c2", "c3"}),
        (cond("orders", "lte", 1, **{"to": "2026-12-31"}), {"c2", "c3", "c4"}),
        (cond("orders", "eq", 1), {"c2", "c3"}),
    ],
)
def test_orders_in_a_date_range(world, condition, expected):
    assert members(condition) == expected


def test_plain_dates_are_days_in_the_operators_timezone(db):
    """2026-03-01 in Shanghai runs from 2026-02-28T16:00Z to 2026-03-01T16:00Z."""
    instants = {
        "before": datetime(2026, 2, 28, 15, 30, tzinfo=UTC),  # 02-28 23:30 in Shanghai
        "first": datetime(2026, 2, 28, 16, 30, tzinfo=UTC),  # 03-01 00:30 in Shanghai (still 02-28 in UTC)
        "last": datetime(2026, 3, 1, 15, 59, tzinfo=UTC),  # 03-01 23:59 in Shanghai
        "after": datetime(2026, 3, 1, 16, 0, tzinfo=UTC),  # 03-02 00:00 in Shanghai
    }
    for name, at in instants.items():
        OrderFactory(customer=CustomerFactory(external_id=name, signup_at=at), occurred_at=at)
    day = {"from": "2026-03-01", "to": "2026-03-01"}
    assert members(cond("orders", "gte", 1, **day)) == {"first", "last"}
    assert members(cond("orders", "gte", 1, **{"from": "2026-03-01"})) == {"first", "last", "after"}
    assert members(cond("orders", "gte", 1, **{"to": "2026-02-28"})) == {"before"}
    assert members(cond("signup_at", "gte", "2026-03-01")) == {"first", "last", "after"}
    assert members(cond("signup_at", "lt", "2026-03-01")) == {"before"}
    assert members(cond("signup_at", "lte", "2026-03-01")) == {"before", "first", "last"}  # the whole day
    assert members(cond("signup_at", "gt", "2026-03-01")) == {"after"}  # after that day
    assert members(cond("signup_at", "between", ["2026-03-01", "2026-03-01"])) == {"first", "last"}
    # A datetime with its offset means exactly that instant.
    assert members(cond("signup_at", "gte", "2026-03-01T00:00:00+00:00")) == {"last", "after"}
    # The timezone is the configured one.
    with override_settings(OPS_DEFAULT_CUSTOMER_TIMEZONE="UTC"):
        assert members(cond("orders", "gte", 1, **day)) == {"last", "after"}
        assert members(cond("signup_at", "between", ["2026-03-01", "2026-03-01"])) == {"last", "after"}


def test_nested_and_or(world):
    definition = either(
        cond("tag", "has", "kol"),
        both(cond("gender", "eq", "male"), cond("city", "eq", "上海")),
        both(
            cond("points_balance", "gte", 100),
            either(cond("city", "eq", "广州"), cond("level", "eq", "Gold-T")),
            cond("event", "lte", 0, event_type="checkin", within_days=7),
        ),
    )
    assert members(definition) == {"c3", "c2", "c4"}
    assert members(
        both(cond("tag", "has", "vip"), cond("gender", "eq", "female"), cond("do_not_contact", "eq", False))
    ) == {"c1"}


def test_score_fields_read_the_given_run(world):
    run = services.recompute_sync(as_of=AS_OF)
    scores = {s.customer.external_id: s for s in CustomerScore.objects.filter(run=run).select_related("customer")}
    assert set(scores) == {"c1", "c2", "c3", "c4"}

    def expect(pred):
        return {e for e, s in scores.items() if pred(s)}

    checks = [
        (cond("r_score", "gte", 4), lambda s: s.r_score is not None and s.r_score >= 4),
        (cond("f_score", "eq", 5), lambda s: s.f_score == 5),
        (cond("monetary", "gt", "100"), lambda s: s.monetary > 100),
        (cond("frequency", "between", [1, 2]), lambda s: 1 <= s.frequency <= 2),
        (cond("stage", "in", ["growing", "mature"]), lambda s: s.stage in ("growing", "mature")),
        (cond("stage", "ne", "prospect"), lambda s: s.stage != "prospect"),
        (cond("tier", "eq", "potential"), lambda s: s.tier == "potential"),
        (cond("rfm_group", "eq", "high_value"), lambda s: s.rfm_group == "high_value"),
        (cond("recency_days", "lt", 200), lambda s: s.recency_days is not None and s.recency_days < 200),
    ]
    for condition, pred in checks:
        assert members(condition, run_id=run.pk) == expect(pred), condition
    assert members(cond("frequency", "gte", 0), run_id=run.pk) == {"c1", "c2", "c3", "c4"}
    assert members(cond("stage", "eq", "prospect"), run_id=run.pk) == {"c4"}
    # Before any run, no customer matches a score condition.
    assert members(cond("frequency", "gte", 0), run_id=None) == set()


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("definition", "path", "fragment"),
    [
        ("stage = mature", "definition", "expected an object"),
        ({"op": "xor", "conditions": [cond("city", "eq", "x")]}, "definition.op", "'and' or 'or'"),
        ({"op": "and", "conditions": []}, "definition.conditions", "non-empty list"),
        ({"op": "and", "conditions": [cond("city", "eq", "x")], "limit": 3}, "definition", "unknown key"),
        (
            both(cond("favourite_colour", "eq", "red")),
            "definition.conditions[0].field",
            "unknown field 'favourite_colour'",
        ),
        (both({"op": "eq", "value": 1}), "definition.conditions[0].field", "unknown field None"),
        (both(cond("r_score", "gte", "4")), "definition.conditions[0].value", "expected a number"),
        (both(cond("r_score", "gte", 4.5)), "definition.conditions[0].value", "expected a number"),
        (both(cond("r_score", "gte", True)), "definition.conditions[0].value", "expected a number"),
        (both(cond("r_score", "gte", 6)), "definition.conditions[0].value", "between 1 and 5"),
        (both(cond("p_alive", "lt", "high")), "definition.conditions[0].value", "expected a number"),
        (both(cond("monetary", "gt", "lots")), "definition.conditions[0].value", "expected a number"),
        (both(cond("do_not_contact", "eq", "yes")), "definition.conditions[0].value", "true or false"),
        (both(cond("stage", "eq", "zombie")), "definition.conditions[0].value", "not one of"),
        (both(cond("city", "eq", 5)), "definition.conditions[0].value", "text value"),
        (both(cond("signup_at", "gt", "yesterday")), "definition.conditions[0].value", "ISO date"),
        (both(cond("signup_at", "gt", "2026-01-01T00:00:00")), "definition.conditions[0].value", "UTC offset"),
        (both(cond("city", "gt", "x")), "definition.conditions[0].op", "city takes op in"),
        (both(cond("r_score", "like", 3)), "definition.conditions[0].op", "r_score takes op in"),
        (both(cond("tag", "eq", "vip")), "definition.conditions[0].op", "tag takes op in"),
        (
            both(cond("event", "gt", 1, event_type="checkin", within_days=7)),
            "definition.conditions[0].op",
            "takes op in",
        ),
        (both(cond("r_score", "between", [4])), "definition.conditions[0].value", "between takes [low, high]"),
        (both(cond("r_score", "between", 4)), "definition.conditions[0].value", "between takes [low, high]"),
        (both(cond("r_score", "between", [5, 1])), "definition.conditions[0].value", "low <= high"),
        (both(cond("r_score", "between", [1, "x"])), "definition.conditions[0].value[1]", "expected a number"),
        (both(cond("stage", "in", [])), "definition.conditions[0].value", "non-empty list"),
        (both(cond("stage", "in", ["mature", "zombie"])), "definition.conditions[0].value[1]", "not one of"),
        (both({"field": "city", "op": "eq"}), "definition.conditions[0].value", "needs a value"),
        (both(cond("city", "eq", "x", within_days=3)), "definition.conditions[0]", "unknown key"),
        (both(cond("event", "gte", 1, within_days=7)), "definition.conditions[0].event_type", "event type"),
        (
            both(cond("event", "gte", 1, event_type="checkin", within_days=0)),
            "definition.conditions[0].within_days",
            "1 to 3650",
        ),
        (
            both(cond("event", "gte", 1, event_type="checkin", within_days="7")),
            "definition.conditions[0].within_days",
            "1 to 3650",
        ),
        (
            both(cond("orders", "gte", 1, **{"from": "2026-03-31", "to": "2026-03-01"})),
            "definition.conditions[0].to",
            "before",
        ),
        (both(cond("orders", "gte", 1, **{"from": "March"})), "definition.conditions[0].from", "ISO date"),
        (both(cond("orders", "gte", -1)), "definition.conditions[0].value", "must be at least 0"),
        (either(both(cond("city", "eq", "x"), "oops")), "definition.conditions[0].conditions[1]", "expected an object"),
    ],
)
def test_bad_definitions_name_the_bad_part(db, definition, path, fragment):
    with translation.override("en"), pytest.raises(DefinitionError) as exc:
        compile_definition(definition, run_id=None)
    assert exc.value.code == "invalid_definition"
    assert exc.value.details["path"] == path
    assert fragment in exc.value.details["message"]
    assert exc.value.message.startswith(path)


@pytest.mark.parametrize(
    ("definition", "english", "chinese"),
    [
        (
            both(cond("favourite_colour", "eq", "red")),
            "unknown field 'favourite_colour'",
            "未知字段 'favourite_colour'",
        ),
        (both(cond("r_score", "gte", 6)), "must be between 1 and 5", "必须介于 1 和 5 之间"),
        (both(cond("stage", "in", [])), "in takes a non-empty list", "in 需要一个非空列表"),
    ],
)
def test_definition_errors_speak_the_operators_language(db, definition, english, chinese):
    for language, expected in (("en", english), ("zh-hans", chinese)):
        with translation.override(language), pytest.raises(DefinitionError) as exc:
            compile_definition(definition, run_id=None)
        assert expected in exc.value.details["message"], (language, exc.value.details["message"])


def test_groups_nest_only_so_deep(db):
    definition = cond("city", "eq", "x")
    for _ in range(MAX_DEPTH):
        definition = both(definition)
    compile_definition(definition, run_id=None)  # exactly MAX_DEPTH groups: fine
    with translation.override("en"), pytest.raises(DefinitionError) as exc:  # not whatever an earlier test left active
        compile_definition(both(definition), run_id=None)
    assert "nest at most" in exc.value.details["message"]
    assert exc.value.details["path"] == "definition" + ".conditions[0]" * MAX_DEPTH


def test_a_definition_has_a_limited_number_of_conditions(db):
    compile_definition(both(*[cond("city", "eq", "x")] * MAX_CONDITIONS), run_id=None)
    with pytest.raises(DefinitionError) as exc:
        compile_definition(both(*[cond("city", "eq", "x")] * (MAX_CONDITIONS + 1)), run_id=None)
    assert exc.value.details["path"] == f"definition.conditions[{MAX_CONDITIONS}]"


# --- saving --------------------------------------------------------------------------------


def changes_of(segment) -> set[tuple[str, str]]:
    return {
        (c.customer.external_id, c.change)
        for c in SegmentMembershipChange.objects.filter(segment=segment).select_related("customer")
    }


def test_segment_save_materialises_members_and_records_changes(world):
    segment = segment_save(name="VIPs", definition=cond("tag", "has", "vip"))
    assert segment.slug == "vips" and segment.size == 2 and segment.computed_at is not None
    assert set(SegmentMembership.objects.filter(segment=segment).values_list("customer__external_id", flat=True)) == {
        "c1",
        "c3",
    }
    assert changes_of(segment) == {("c1", "enter"), ("c3", "enter")}

    segment = segment_save(
        name="VIPs", segment=segment, definition=either(cond("tag", "has", "kol"), cond("gender", "eq", "male"))
    )
    assert segment.size == 2
    assert set(SegmentMembership.objects.filter(segment=segment).values_list("customer__external_id", flat=True)) == {
        "c2",
        "c3",
    }
    assert changes_of(segment) == {("c1", "enter"), ("c3", "enter"), ("c1", "leave"), ("c2", "enter")}

    # Saving the same definition again changes nothing.
    segment_save(
        name="VIPs", segment=segment, definition=either(cond("tag", "has", "kol"), cond("gender", "eq", "male"))
    )
    assert SegmentMembershipChange.objects.filter(segment=segment).count() == 4


def test_segment_save_refuses_a_bad_definition_and_writes_nothing(world):
    with pytest.raises(DefinitionError):
        segment_save(name="Broken", definition=both(cond("nope", "eq", 1)))
    assert not Segment.objects.exists()
    segment = segment_save(name="Fine", definition=cond("tag", "has", "vip"))
    with pytest.raises(DefinitionError):
        segment_save(name="Fine", segment=segment, definition=cond("r_score", "gte", "high"))
    segment.refresh_from_db()
    assert segment.definition == cond("tag", "has", "vip") and segment.size == 2
    # A taken slug the caller chose is refused; one made from the name gets a numeric suffix (issue 10).
    with pytest.raises(ApplicationError) as exc:
        segment_save(name="Fine again", slug="fine", definition=cond("tag", "has", "kol"))
    assert exc.value.code == "duplicate_slug"
    assert segment_save(name="Fine", definition=cond("tag", "has", "kol")).slug == "fine-2"


def test_static_upload(world):
    with pytest.raises(ApplicationError) as exc:
        static_segment_upload(name="List", file_bytes=b"external_id\nc1\nghost-1\nc3\nghost-2\n")
    assert exc.value.code == "unknown_customers"
    assert exc.value.details["unknown"] == ["ghost-1", "ghost-2"]
    assert not Segment.objects.exists() and not SegmentMembershipChange.objects.exists()

    segment = static_segment_upload(name="List", file_bytes="\ufeffexternal_id\nc1\nc3\nc1\n".encode())
    assert segment.kind == Segment.Kind.STATIC and segment.size == 2
    assert changes_of(segment) == {("c1", "enter"), ("c3", "enter")}
    segment = static_segment_upload(name="List", file_bytes=b"c3\nc4\n")
    assert changes_of(segment) == {("c1", "enter"), ("c3", "enter"), ("c1", "leave"), ("c4", "enter")}
    with pytest.raises(ApplicationError) as exc:
        static_segment_upload(name="List", file_bytes=b"c2\nnobody\n")
    assert exc.value.code == "unknown_customers"
    assert set(SegmentMembership.objects.filter(segment=segment).values_list("customer__external_id", flat=True)) == {
        "c3",
        "c4",
    }


def test_a_score_segment_saved_before_any_run_is_empty_until_the_first_run(world):
    segment = segment_save(name="Buyers", definition=cond("frequency", "gte", 1))
    assert segment.size == 0 and not SegmentMembership.objects.exists()
    services.recompute_sync(as_of=AS_OF)
    segment.refresh_from_db()
    assert segment.size == 3
    assert changes_of(segment) == {("c1", "enter"), ("c2", "enter"), ("c3", "enter")}


def test_deleting_a_customer_or_a_segment_takes_their_memberships_along(db):
    # The membership tables carry no database-level foreign keys (bulk writes); Django cascades.
    a, b = CustomerFactory(city="杭州"), CustomerFactory(city="杭州")
    segment = segment_save(name="Hangzhou", definition=cond("city", "eq", "杭州"))
    assert SegmentMembership.objects.filter(segment=segment).count() == 2
    a.delete()
    assert set(SegmentMembership.objects.values_list("customer_id", flat=True)) == {b.pk}
    assert not SegmentMembershipChange.objects.filter(customer_id=a.pk).exists()
    segment.delete()
    assert not SegmentMembership.objects.exists() and not SegmentMembershipChange.objects.exists()

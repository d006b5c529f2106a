"""Hostile segment definitions (issue 9, classes 3 and 6): numbers the database cannot
hold, JSON of unexpected types in any position, out-of-range dates, huge ``in`` lists
and huge definitions are refused as ``invalid_definition`` naming the path — never
another exception, never a database error when the compiled query runs, never a 500
from the preview. Generated with hypothesis: arbitrary JSON values in every position
of a definition."""

import json
import math
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone, translation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import ApplicationError
from incentives.models import PointsAccount
from segments.definitions import (
    COUNT_OPS,
    FIELDS,
    MAX_DEFINITION_BYTES,
    MAX_IN_VALUES,
    DefinitionError,
    compile_definition,
)
from segments.definitions import OPS as OPS_BY_KIND
from segments.models import CustomerScore, Segment, SegmentRun
from segments.services import segment_save
from users.models import Customer

from .factories import AS_OF, CustomerFactory, ensure_rule_set

HYPOTHESIS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

# --- strategies ------------------------------------------------------------------------

HOSTILE_NUMBERS = [
    10**100,
    -(10**100),
    2**31,
    2**63,
    -(2**63) - 1,
    1e308,
    -1e308,
    math.inf,
    -math.inf,
    math.nan,
    1e-320,
    "1e999999",
    "-1e999999",
    "1e-999999",
    "1e9999999",
    "-1e99999999999",
    "0e9999999999",
    "1e99999999999999999999999",
    "NaN",
    "Infinity",
    "sNaN",
    "999999999999.999",
    "1000000000000",
    "0.001",
    " 5 ",
]
HOSTILE_STRINGS = [
    "",
    "\x00",
    "a\x00b",
    "\udc00",
    "\ud800x",
    "x" * 101,
    "x" * 70_000,
    "9999-12-31",
    "0001-01-01",
    "1969-12-31",
    "2100-01-02",
    "2026-02-30",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "2026-01-01T00:00:00",
    "2026-01-01T00:00:00+14:00",
    "2026-03-01",
]
leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.sampled_from(HOSTILE_NUMBERS)
    | st.text(max_size=20)
    | st.sampled_from(HOSTILE_STRINGS)
    | st.sampled_from(sorted(FIELDS))
)
json_values = st.recursive(
    leaves, lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
)
OPS = ["eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "contains", "has", "not_has", "and", "or"]
fields = st.sampled_from(sorted(FIELDS)) | json_values
ops = st.sampled_from(OPS) | json_values
plausible = st.one_of(
    st.integers(-10, 10),
    st.floats(allow_nan=True),
    st.sampled_from(["vip", "mature", "2026-03-01", True, False, *HOSTILE_NUMBERS, *HOSTILE_STRINGS]),
)
values = plausible | st.lists(plausible, max_size=3) | json_values


@st.composite
def conditions(draw):
    node = {"field": draw(fields), "op": draw(ops)}
    if draw(st.booleans()):
        node["value"] = draw(values)
    for key, strategy in (
        ("event_type", st.sampled_from(["checkin", "\x00", "x" * 200]) | json_values),
        ("within_days", st.integers(-5, 5000) | json_values),
        ("from", st.sampled_from(HOSTILE_STRINGS) | json_values),
        ("to", st.sampled_from(HOSTILE_STRINGS) | json_values),
    ):
        if draw(st.integers(0, 3)) == 0:
            node[key] = draw(strategy)
    if draw(st.integers(0, 9)) == 0:
        node[draw(st.text(max_size=5))] = draw(json_values)
    return node


definitions = st.recursive(
    conditions() | json_values,
    lambda children: st.fixed_dictionaries(
        {"op": st.sampled_from(["and", "or"]) | json_values, "conditions": st.lists(children, max_size=3) | json_values}
    ),
    max_leaves=6,
)


@pytest.fixture
def published(db):
    """A published run with no scores: score conditions run their subqueries with the
    definition's values (before any run they compile to "nobody", reading nothing)."""
    CustomerFactory(external_id="h1")
    return SegmentRun.objects.create(
        status=SegmentRun.Status.PUBLISHED, as_of=AS_OF, rule_set=ensure_rule_set(), published_at=timezone.now()
    )


@pytest.fixture
def operator(client, make_user):
    client.force_login(make_user("operator"))
    return client


def evaluate(definition, run_id):
    """Compiles and runs the definition's query; only ``DefinitionError`` may come out."""
    q = compile_definition(definition, run_id=run_id, now=AS_OF)
    with transaction.atomic():  # a database error would otherwise poison the test's transaction
        return Customer.objects.filter(q).count()


# --- generated ---------------------------------------------------------------------------


@HYPOTHESIS
@given(definition=definitions)
def test_any_json_in_any_position_compiles_or_is_a_definition_error(published, definition):
    for run_id in (None, published.pk):
        try:
            evaluate(definition, run_id)
        except DefinitionError as exc:
            assert exc.code == "invalid_definition"
            assert exc.details["path"].startswith("definition")
            assert exc.details["message"] and len(exc.details["message"]) < 2000


@HYPOTHESIS
@given(definition=definitions)
def test_any_json_in_any_position_previews_as_200_or_400(operator, published, definition):
    client = operator
    try:
        body = json.dumps({"definition": definition})
    except ValueError:  # an integer too long for json.dumps: nothing a client could send
        return
    response = client.post(reverse("segments:preview"), data=body, content_type="application/json")
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        error = response.json()["error"]
        # The page's JSON gate (core.json) refuses NUL, unpaired surrogates and deep nesting
        # before the definition is compiled; anything else is the compiler's, with its path.
        if error["code"] == "invalid_json":
            assert "\\u0000" in body or "\\ud" in body or body.count("[") + body.count("{") > 64, body[:200]
        else:
            assert error["code"] == "invalid_definition" and error["details"]["path"].startswith("definition")


@HYPOTHESIS
@given(
    name=st.sampled_from([n for n, f in FIELDS.items() if f.kind in ("int", "float", "decimal")]),
    op=st.sampled_from(["eq", "gt", "gte", "lt", "lte"]),
    value=st.integers(-(10**40), 10**40)
    | st.floats()
    | st.decimals().map(str)
    | st.tuples(st.integers(-(10**6), 10**6), st.integers(-(10**20), 10**20)).map(lambda t: f"{t[0]}e{t[1]}")
    | st.sampled_from(HOSTILE_NUMBERS),
)
def test_every_number_is_refused_or_held_by_its_column(published, name, op, value):
    f = FIELDS[name]
    if op not in (COUNT_OPS if f.source in ("event", "orders") else OPS_BY_KIND[f.kind]):
        op = "gte"
    extra = {"event_type": "checkin", "within_days": 7} if f.source == "event" else {}
    try:
        evaluate({"field": name, "op": op, "value": value, **extra}, published.pk)
    except DefinitionError as exc:
        assert exc.details["path"] == "definition.value"


@HYPOTHESIS
@given(
    name=st.sampled_from([n for n, f in FIELDS.items() if f.kind == "decimal"]),
    mantissa=st.integers(-(10**15), 10**15).map(str) | st.decimals(allow_nan=False, allow_infinity=False).map(str),
    exponent=st.integers(-(10**20), 10**20),
)
def test_any_decimal_in_scientific_notation_is_refused_or_held(published, name, mantissa, exponent):
    try:
        evaluate({"field": name, "op": "gte", "value": f"{mantissa}e{exponent}"}, published.pk)
    except DefinitionError as exc:
        assert exc.details["path"] == "definition.value"


# --- the examples -----------------------------------------------------------------


def refused(definition, path, message=None):
    with translation.override("en"), pytest.raises(DefinitionError) as exc:
        compile_definition(definition, run_id=None)
    assert exc.value.details["path"] == path, exc.value.details
    if message:
        assert message in exc.value.details["message"], exc.value.details
    return exc.value


def test_every_numeric_field_is_bounded_by_what_its_column_holds():
    columns = {"score": CustomerScore, "points": PointsAccount}
    for name, f in FIELDS.items():
        if f.kind not in ("int", "float", "decimal"):
            continue
        assert f.limit is not None, name
        model = columns.get(f.source)
        if model is None:  # a month, or a COUNT(*) (an integer)
            column_max = 12 if f.column == "birthday__month" else 2**31 - 1
        else:
            column = model._meta.get_field(f.column)
            internal = column.get_internal_type()
            if internal == "DecimalField":
                assert f.places == column.decimal_places, name
                column_max = Decimal(10) ** (column.max_digits - column.decimal_places) - Decimal("0.01")
            elif internal == "FloatField":
                column_max = 1.7e308
            else:
                column_max = connection.ops.integer_field_range(internal)[1]
        assert f.limit <= column_max, name
        if f.maximum is not None:
            assert f.maximum <= f.limit, name


@pytest.mark.parametrize(
    "value",
    ["1e999999", "1e9999999", 1e300, 10**30, "1000000000000", 1000000000000, "999999999999.999", "NaN", math.inf],
)
def test_a_monetary_value_the_column_cannot_hold_is_refused(db, value):
    error = refused({"field": "monetary", "op": "gt", "value": value}, "definition.value")
    assert error.code == "invalid_definition"


@pytest.mark.parametrize(
    ("name", "value"),
    [("frequency", 2**31), ("recency_days", 10**20), ("points_balance", 2**63), ("orders", 2**31), ("event", 1e300)],
)
def test_an_integer_the_column_cannot_hold_is_refused(db, name, value):
    extra = {"event_type": "checkin", "within_days": 7} if name == "event" else {}
    error = refused(
        {"op": "and", "conditions": [{"field": name, "op": "gte", "value": value, **extra}]},
        "definition.conditions[0].value",
        "at most",
    )
    assert error.code == "invalid_definition"


def test_the_largest_values_the_columns_hold_are_accepted(published):
    for name, f in FIELDS.items():
        if f.kind in ("int", "float", "decimal"):
            op = "gte" if f.source in ("event", "orders") else "lte"
            extra = {"event_type": "checkin", "within_days": 7} if f.source == "event" else {}
            value = float(f.limit) if f.kind == "float" else str(f.limit) if f.kind == "decimal" else f.limit
            assert evaluate({"field": name, "op": op, "value": value, **extra}, published.pk) >= 0  # compiled and ran


@pytest.mark.parametrize(
    ("definition", "path"),
    [
        ({"field": ["city"], "op": "eq", "value": "x"}, "definition.field"),
        ({"field": {"city": 1}, "op": "eq", "value": "x"}, "definition.field"),
        ({"field": "city", "op": {"eq": 1}, "value": "x"}, "definition.op"),
        ({"field": "city", "op": ["eq"], "value": "x"}, "definition.op"),
        ({"op": {"and": 1}, "conditions": [{"field": "city", "op": "eq", "value": "x"}]}, "definition.op"),
        ({"field": "city", "op": "eq", "value": "a\x00b"}, "definition.value"),
        ({"field": "city", "op": "in", "value": ["ok", "\udc00"]}, "definition.value[1]"),
        ({"field": "tag", "op": "has", "value": {"vip": True}}, "definition.value"),
        ({"field": "event", "op": "gte", "value": 1, "event_type": "a\x00", "within_days": 7}, "definition.event_type"),
        ({"field": "p_alive", "op": "lt", "value": math.nan}, "definition.value"),
    ],
)
def test_unexpected_json_types_are_refused_naming_the_path(db, definition, path):
    refused(definition, path)


@pytest.mark.parametrize(
    ("definition", "path"),
    [
        ({"field": "signup_at", "op": "lte", "value": "9999-12-31"}, "definition.value"),
        ({"field": "signup_at", "op": "gt", "value": "9999-12-31"}, "definition.value"),
        ({"field": "signup_at", "op": "between", "value": ["2026-01-01", "9999-12-31"]}, "definition.value[1]"),
        ({"field": "signup_at", "op": "gte", "value": "0001-01-01"}, "definition.value"),
        ({"field": "signup_at", "op": "gte", "value": "1969-12-31"}, "definition.value"),
        ({"field": "signup_at", "op": "lt", "value": "9999-12-31T23:59:59-14:00"}, "definition.value"),
        ({"field": "signup_at", "op": "gt", "value": "0001-01-01T00:00:00+14:00"}, "definition.value"),
        ({"field": "orders", "op": "gte", "value": 1, "to": "9999-12-31"}, "definition.to"),
        ({"field": "orders", "op": "gte", "value": 1, "from": "0001-01-01T00:00:00+14:00"}, "definition.from"),
    ],
)
def test_dates_outside_1970_to_2100_are_refused(db, definition, path):
    error = refused(definition, path, "1970-01-01")
    assert error.code == "invalid_definition"


def test_dates_at_the_edges_of_the_range_are_accepted(published):
    for value in ("1970-01-01", "2100-01-01", "1970-01-01T00:00:00+00:00", "2100-01-01T08:00:00+08:00"):
        for op in ("gt", "gte", "lt", "lte"):
            assert evaluate({"field": "signup_at", "op": op, "value": value}, published.pk) >= 0  # compiled and ran
    assert (
        evaluate({"field": "orders", "op": "gte", "value": 1, "from": "1970-01-01", "to": "2100-01-01"}, published.pk)
        >= 0
    )  # compiled and ran


def test_in_lists_are_capped_and_a_huge_one_is_refused_at_once(db):
    ok = {"field": "city", "op": "in", "value": [f"c{i}" for i in range(MAX_IN_VALUES)]}
    compile_definition(ok, run_id=None)
    refused({**ok, "value": [*ok["value"], "one more"]}, "definition.value", str(MAX_IN_VALUES))
    started = time.monotonic()
    huge = {"op": "and", "conditions": [{"field": "frequency", "op": "in", "value": list(range(300_000))}]}
    refused(huge, "definition", "KB")  # over the size limit before any value is looked at
    assert time.monotonic() - started < 2


def test_the_whole_definition_is_capped_in_size(db):
    many = {"op": "or", "conditions": [{"field": "city", "op": "eq", "value": "x" * 100} for _ in range(40)]}
    compile_definition(many, run_id=None)  # 40 conditions of 100 characters: well under the limit
    padded = {"op": "or", "conditions": [{"field": "city", "op": "in", "value": ["y" * 100] * 700}]}
    assert len(json.dumps(padded)) > MAX_DEFINITION_BYTES
    refused(padded, "definition", "64 KB")


def test_nesting_that_would_overflow_the_stack_is_refused(db):
    nested: list = []
    for _ in range(100_000):
        nested = [nested]
    error = refused({"op": "and", "conditions": nested}, "definition.conditions" + "[0]" * 63)
    assert error.code == "invalid_definition"


def test_hostile_input_messages_speak_the_operators_language(db):
    cases = [
        ({"field": "monetary", "op": "gt", "value": "1e999999"}, "可存储的最大值"),
        ({"field": "signup_at", "op": "lte", "value": "9999-12-31"}, "1970-01-01 至 2100-01-01"),
        ({"field": "city", "op": "eq", "value": "a\x00"}, "NUL"),
        ({"field": "city", "op": "in", "value": ["x"] * (MAX_IN_VALUES + 1)}, "最多接受"),
        ({"field": "monetary", "op": "gt", "value": "1.001"}, "位小数"),
    ]
    for definition, chinese in cases:
        with translation.override("zh-hans"), pytest.raises(DefinitionError) as exc:
            compile_definition(definition, run_id=None)
        assert chinese in exc.value.details["message"], exc.value.details


# --- class 3: with a published run, preview and save refuse; before it, nothing is stored -----


def test_an_overflowing_number_is_a_400_on_preview_and_refused_on_save_once_a_run_exists(client, make_user, published):
    definition = {"field": "monetary", "op": "gt", "value": "1e999999"}
    client.force_login(make_user("operator"))
    response = client.post(
        reverse("segments:preview"), data=json.dumps({"definition": definition}), content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_definition"
    assert response.json()["error"]["details"]["path"] == "definition.value"
    response = client.post(reverse("segments:create"), {"name": "Overflow", "definition": json.dumps(definition)})
    assert response.status_code == 200 and response.context["form"].errors  # re-rendered with its errors
    assert "definition.value" in response.content.decode()
    with pytest.raises(ApplicationError):
        segment_save(name="Overflow", definition=definition)
    assert not Segment.objects.exists()


def test_an_overflowing_number_is_refused_before_the_first_run(db):
    with pytest.raises(DefinitionError):
        segment_save(name="Overflow", definition={"field": "monetary", "op": "gt", "value": "1e999999"})
    assert not Segment.objects.exists()

"""The shared input layer against hostile input, generated: instants outside the
accepted range, NUL and unpaired surrogates in any text, nesting of any depth, and
values a lax parser would coerce (issue 9, classes 1, 4 and 5 and strictness)."""

import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from django import forms
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from core.json import JSONTooDeep, json_depth_exceeds, json_loads_bounded
from core.validation import (
    DATE_MAX,
    DATE_MIN,
    INSTANT_MAX,
    INSTANT_MIN,
    TEXT_CELLS,
    bad_text_path,
    validate_form_instant,
)
from users.rows import CustomerRow, EventRow, OrderRow

_EPOCH0 = datetime(1, 1, 1)
_MIN_S = (INSTANT_MIN.replace(tzinfo=None) - _EPOCH0).total_seconds()
_MAX_S = (INSTANT_MAX.replace(tzinfo=None) - _EPOCH0).total_seconds()

# Offsets from -14:00 to +14:00 in quarter hours, as clients send them.
offsets = st.integers(min_value=-14 * 4, max_value=14 * 4).map(lambda q: q * 15)
wall_times = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59))


def iso(wall: datetime, offset_minutes: int) -> str:
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"{wall.isoformat()}{sign}{hours:02d}:{minutes:02d}"


def in_range(wall: datetime, offset_minutes: int) -> bool:
    """The reference rule, in plain seconds (no datetime arithmetic that could overflow)."""
    utc_s = (wall - _EPOCH0).total_seconds() - offset_minutes * 60
    return _MIN_S <= utc_s <= _MAX_S


def out_of_range_instants():
    return st.tuples(wall_times, offsets).filter(lambda t: not in_range(*t)).map(lambda t: iso(*t))


# --- class 1: instants -------------------------------------------------------------------


@given(wall=wall_times, offset=offsets)
@settings(max_examples=400)
def test_every_instant_field_accepts_exactly_the_documented_range(wall, offset):
    value = iso(wall, offset)
    expected = in_range(wall, offset)
    rows = [
        (CustomerRow, {"external_id": "c1", "signup_at": value}),
        (OrderRow, {"external_id": "o1", "customer": "c1", "amount": "1.00", "occurred_at": value}),
        (EventRow, {"customer": "c1", "type": "visit", "occurred_at": value}),
    ]
    for model, data in rows:
        try:
            row = model.model_validate(data)
        except ValidationError as exc:
            assert not expected, (value, exc)
            assert {e["type"] for e in exc.errors()} <= {"instant_range", "datetime_from_date_parsing"}
        else:
            assert expected, value
            stamp = row.signup_at if model is CustomerRow else row.occurred_at
            # What was accepted converts to UTC and to any zone without overflowing.
            stamp.astimezone(UTC)
            stamp.astimezone(timezone(timedelta(hours=14)))
            stamp.astimezone(timezone(timedelta(hours=-14)))


@given(value=out_of_range_instants())
@settings(max_examples=200)
def test_out_of_range_instants_are_refused_in_a_form_or_query_parameter_too(value):
    parsed = datetime.fromisoformat(value)
    with pytest.raises(forms.ValidationError):
        validate_form_instant(parsed)


@given(day=st.dates())
def test_form_dates_accept_exactly_the_documented_range(day):
    if DATE_MIN <= day <= DATE_MAX:
        validate_form_instant(day)
    else:
        with pytest.raises(forms.ValidationError):
            validate_form_instant(day)


@given(number=st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans()))
def test_numbers_are_not_instants_or_dates(number):
    with pytest.raises(ValidationError) as exc:
        CustomerRow.model_validate({"external_id": "c1", "signup_at": number})
    assert exc.value.errors()[0]["type"] == "instant_type"
    with pytest.raises(ValidationError):
        CustomerRow.model_validate({"external_id": "c1", "birthday": number})
    # A Unix time written as a string is no ISO 8601 instant either.
    with pytest.raises(ValidationError):
        CustomerRow.model_validate({"external_id": "c1", "signup_at": str(number)})


# --- strictness ----------------------------------------------------------------------------

not_a_bool = st.one_of(
    st.sampled_from(["yes", "no", "true", "false", "1", "0", "on", "off", "y", "n"]),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=5),
)


@given(value=not_a_bool)
def test_api_booleans_are_json_booleans_only(value):
    for data in (
        {"external_id": "c1", "do_not_contact": value},
        {"external_id": "c1", "consent": {"sms": value}},
    ):
        with pytest.raises(ValidationError) as exc:
            CustomerRow.model_validate(data)
        assert exc.value.errors()[0]["type"] == "bool_type"


@pytest.mark.parametrize(("cell", "expected"), [("1", True), ("0", False), ("true", True), ("no", False)])
def test_a_files_text_cells_still_convert_to_booleans(cell, expected):
    row = CustomerRow.model_validate({"external_id": "c1", "do_not_contact": cell}, context=TEXT_CELLS)
    assert row.do_not_contact is expected


# --- class 4: NUL and unpaired surrogates --------------------------------------------------

hostile_chars = st.sampled_from(["\x00", "\ud800", "\udc00", "\udfff", "\udbff"])
clean_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=20)


@st.composite
def hostile_text(draw):
    text = draw(clean_text)
    at = draw(st.integers(min_value=0, max_value=len(text)))
    return text[:at] + draw(hostile_chars) + text[at:]


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), clean_text)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(clean_text, children, max_size=3)),
    max_leaves=10,
)


@st.composite
def properties_with_hostile_text(draw):
    """Event properties with one hostile string somewhere: a key or a value, at any depth."""
    props = draw(st.dictionaries(clean_text, json_values, min_size=0, max_size=3))
    bad = draw(hostile_text())
    path = draw(st.lists(st.sampled_from(["list", "dict"]), max_size=4))
    as_key = draw(st.booleans())
    node: object = {bad: 1} if as_key else bad
    for kind in reversed(path):
        node = [node] if kind == "list" else {"k": node}
    props[draw(clean_text) + "!"] = node
    return props


@given(field=st.sampled_from(["name", "nickname", "city", "channel"]), value=hostile_text())
def test_hostile_text_in_a_customer_field_is_a_row_error(field, value):
    with pytest.raises(ValidationError) as exc:
        CustomerRow.model_validate({"external_id": "c1", field: value})
    assert exc.value.errors()[0]["loc"][0] == field


@given(value=hostile_text())
def test_hostile_text_in_a_tag_is_a_row_error(value):
    with pytest.raises(ValidationError):
        CustomerRow.model_validate({"external_id": "c1", "tags": ["ok", value]})


@given(props=properties_with_hostile_text())
@settings(max_examples=300)
def test_hostile_text_anywhere_in_event_properties_is_a_row_error(props):
    with pytest.raises(ValidationError) as exc:
        EventRow.model_validate(
            {"customer": "c1", "type": "visit", "occurred_at": "2026-01-01T00:00:00Z", "properties": props}
        )
    assert exc.value.errors()[0]["loc"] == ("properties",)


@given(props=st.dictionaries(clean_text, json_values, max_size=4))
def test_clean_event_properties_pass(props):
    EventRow.model_validate(
        {"customer": "c1", "type": "visit", "occurred_at": "2026-01-01T00:00:00Z", "properties": props}
    )
    assert bad_text_path(props) is None


# --- class 5: nesting ---------------------------------------------------------------------


def depth(value) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


bracket_text = st.text(alphabet='[]{}"\\ab,:', max_size=12)
nested = st.recursive(
    st.one_of(st.none(), st.integers(), bracket_text),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(bracket_text, children, max_size=3)),
    max_leaves=40,
)


@given(value=nested, limit=st.integers(min_value=0, max_value=12))
@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
def test_the_depth_scan_agrees_with_the_parsed_depth(value, limit):
    """Brackets inside strings (escaped quotes included) never count."""
    raw = json.dumps(value, ensure_ascii=False)
    assert json_depth_exceeds(raw.encode(), limit) is (depth(value) > limit)
    if depth(value) > limit:
        with pytest.raises(JSONTooDeep):
            json_loads_bounded(raw, limit)
    else:
        assert json_loads_bounded(raw, limit) == value


@given(levels=st.integers(min_value=65, max_value=200_000), opener=st.sampled_from(["[", '{"a":']))
@settings(max_examples=20, deadline=None)
def test_any_deep_body_is_refused_before_parsing(levels, opener):
    closer = "]" if opener == "[" else "}"
    raw = opener * levels + "1" + closer * levels
    with pytest.raises(JSONTooDeep):
        json_loads_bounded(raw)


@given(junk=st.binary(max_size=300))
def test_the_depth_scan_survives_any_bytes(junk):
    # Any bytes give an answer (no exception), and bytes without a bracket are never too deep.
    assert json_depth_exceeds(junk, 3) in (True, False)
    assert json_depth_exceeds(b'"' + junk, 3) in (True, False)  # an unterminated string
    assert json_depth_exceeds(junk.replace(b"[", b"").replace(b"{", b""), 3) is False


def test_an_unterminated_string_full_of_escaped_quotes_is_scanned_in_linear_time():
    import time

    raw = b"[" * 100 + b'"' + b'\\"' * 500_000
    started = time.perf_counter()
    json_depth_exceeds(raw, 64)
    assert time.perf_counter() - started < 2


def test_dates_in_range_are_kept_as_given():
    row = CustomerRow.model_validate(
        {"external_id": "c1", "birthday": "1950-02-03", "signup_at": "2100-01-01T08:00:00+08:00"}
    )
    assert row.birthday == date(1950, 2, 3)
    assert row.signup_at.astimezone(UTC) == INSTANT_MAX

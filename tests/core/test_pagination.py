"""Tampered cursors (issue 9, class 7): a cursor whose position is not a value of the
ordering column answers like any other invalid cursor — 404 "Invalid cursor" in the
error shape — on every cursor-paginated list, never a 500. Generated with hypothesis:
random bytes, and well-formed query strings with random positions, offsets and flags."""

import base64
from urllib.parse import urlencode

import pytest
from django.urls import get_resolver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.pagination import CursorPagination

from core.pagination import CheckedCursorPagination
from segments.services import static_segment_upload
from tests.users.factories import CustomerFactory

CUSTOMERS = "/api/v1/customers/"
MEMBERS = "/api/v1/segments/listed/members"
LISTS = [CUSTOMERS, MEMBERS]

HYPOTHESIS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@pytest.fixture
def world(db):
    customers = CustomerFactory.create_batch(5)
    static_segment_upload(name="Listed", file_bytes="\n".join(c.external_id for c in customers).encode())
    return customers


def cursor(query: str | bytes) -> str:
    raw = query.encode() if isinstance(query, str) else query
    return base64.b64encode(raw).decode("ascii")


def assert_invalid_cursor(response):
    assert response.status_code == 404, response.content
    assert response.json() == {"error": {"code": "not_found", "message": "Invalid cursor", "details": {}}}


@pytest.mark.parametrize("url", LISTS)
@pytest.mark.parametrize(
    "position",
    ["abc", "1.5", "1e3", " 7", "7 ", "0x10", "1_000", "--1", "", "\x00", "٣", "9" * 30, str(2**63), str(-(2**63) - 1)],
)
def test_a_position_that_is_not_an_id_is_an_invalid_cursor(world, api, url, position):
    assert_invalid_cursor(api.get(url, {"cursor": cursor(urlencode({"p": position}))}))


@pytest.mark.parametrize("url", LISTS)
def test_the_issue_example_is_an_invalid_cursor(world, api, url):
    assert cursor("p=abc") == "cD1hYmM="
    assert_invalid_cursor(api.get(url, {"cursor": "cD1hYmM="}))


@pytest.mark.parametrize("url", LISTS)
def test_a_genuine_cursor_still_pages(world, api, url):
    first = api.get(url, {"page_size": 2}).json()
    assert len(first["results"]) == 2 and first["next"]
    second = api.get(first["next"])
    assert second.status_code == 200
    assert len(second.json()["results"]) == 2
    assert {r["external_id"] for r in first["results"]}.isdisjoint(r["external_id"] for r in second.json()["results"])
    # A hand-made cursor at the first page's last id gives the same page.
    last_id = max(c.pk for c in world if c.external_id in {r["external_id"] for r in first["results"]})
    made = api.get(url, {"page_size": 2, "cursor": cursor(urlencode({"p": last_id}))})
    assert made.status_code == 200 and made.json()["results"] == second.json()["results"]


@pytest.mark.parametrize("url", LISTS)
@HYPOTHESIS
@given(raw=st.binary(max_size=64))
def test_random_cursor_bytes_are_never_a_server_error(world, api, url, raw):
    response = api.get(url, {"cursor": cursor(raw)})
    assert response.status_code in (200, 404), response.content
    if response.status_code == 404:
        assert_invalid_cursor(response)


text = (
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30)
    | st.integers().map(str)
    | st.floats().map(str)
    | st.sampled_from(["", "-", "0", "1", str(2**63 - 1), str(2**63)])
)


@pytest.mark.parametrize("url", LISTS)
@HYPOTHESIS
@given(p=text, o=st.none() | text, r=st.none() | text, junk=st.text(max_size=20))
def test_random_cursor_fields_are_never_a_server_error(world, api, url, p, o, r, junk):
    fields = {"p": p, **({"o": o} if o is not None else {}), **({"r": r} if r is not None else {})}
    response = api.get(url, {"cursor": cursor(urlencode(fields)), "page_size": 2})
    assert response.status_code in (200, 404), response.content
    if response.status_code == 404:
        assert_invalid_cursor(response)
    # Anything appended (non-ASCII, NUL, padding): an error in the shape, never a 500.
    response = api.get(url, {"cursor": cursor(urlencode(fields)) + junk, "page_size": 2})
    assert response.status_code in (200, 400, 404), response.content
    assert response.status_code == 200 or set(response.json()["error"]) == {"code", "message", "details"}


def _views(patterns):
    for pattern in patterns:
        if hasattr(pattern, "url_patterns"):
            yield from _views(pattern.url_patterns)
        else:
            view = getattr(pattern.callback, "cls", None)
            if view is not None:
                yield view


def test_every_cursor_paginated_api_list_checks_its_cursor():
    cursor_lists = [
        view
        for view in _views(get_resolver().url_patterns)
        if isinstance(getattr(view, "pagination_class", None), type)
        and issubclass(view.pagination_class, CursorPagination)
    ]
    assert len(cursor_lists) >= 2  # the customer list and segment members
    for view in cursor_lists:
        assert issubclass(view.pagination_class, CheckedCursorPagination), view

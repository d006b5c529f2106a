"""The customer 360 page (composed in console.views): profile, orders, events and
each engine's section. Access and PII masking on it are tested with the search in
tests/users/test_views.py (same URLs)."""

import re

from django.urls import reverse

from tests.users import test_views as users_pages
from tests.users.factories import EventFactory, OrderFactory

customer = users_pages.customer  # the fixture: cust-001 with orders, an event, a referrer
login = users_pages.login

# --- the 360 page ------------------------------------------------------------------

EMPTY_SECTIONS = {
    "rfm": None,
    "tier": None,
    "stage": None,
    "churn": None,
    "segments": [],
    "points": None,
    "level": None,
    "badges": [],
    "communities": [],
}


def test_profile_sections_cover_every_engine(customer):
    from console import selectors

    assert set(selectors.customer_profile_sections(customer=customer)) >= set(EMPTY_SECTIONS)


def test_customer_360_shows_profile_orders_events_and_empty_sections(client, make_user, customer, monkeypatch):
    from console import selectors

    monkeypatch.setattr(selectors, "customer_profile_sections", lambda *, customer: dict(EMPTY_SECTIONS))
    login(client, make_user, "operator")
    response = client.get("/customers/cust-001/", HTTP_ACCEPT_LANGUAGE="en")
    html = response.content.decode()
    assert response.context["referral_count"] == 1
    assert reverse("users:detail", args=["ref-001"]) in html  # referred by, as a link
    assert "vip" in html
    assert "ord-A" in html and "ord-B" in html
    assert "add_to_cart" in html and "SKU-42" in html
    consents = {c["label"]: c["granted"] for c in response.context["consents"]}
    assert consents["SMS"] is True and consents["WeChat service account"] is False
    # Segments, points and community groups have panels of their own; the generic card holds the rest only.
    assert response.context["sections"] == []
    assert "More about this customer" not in html
    assert 'data-section="communities"' in html and "Not in any community group." in html


def test_customer_360_query_count_does_not_grow_with_history(client, make_user, customer):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    login(client, make_user, "operator")
    client.get("/customers/cust-001/")  # warm-up (session, permission caches)
    OrderFactory.create_batch(2, customer=customer)
    EventFactory.create_batch(2, customer=customer)
    with CaptureQueriesContext(connection) as small:
        assert client.get("/customers/cust-001/").status_code == 200
    OrderFactory.create_batch(40, customer=customer)
    EventFactory.create_batch(80, customer=customer)
    with CaptureQueriesContext(connection) as large:
        assert client.get("/customers/cust-001/").status_code == 200
    assert len(large) == len(small)
    assert len(small) <= 25  # a fixed budget for all sections (profile, points, segments)


def test_filled_sections_render_generically(client, make_user, customer, monkeypatch):
    from console import selectors

    monkeypatch.setattr(
        selectors,
        "customer_profile_sections",
        lambda *, customer: {
            **EMPTY_SECTIONS,
            "new_list": ["书友会", "跑团"],
            "new_thing": {"r": 5, "expiring_soon": 7},
            "empty_thing": None,
        },
    )
    login(client, make_user, "operator")
    html = client.get("/customers/cust-001/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert [s["key"] for s in client.get("/customers/cust-001/").context["sections"]] == [
        "new_list",
        "new_thing",
        "empty_thing",
    ]
    assert "书友会" in html and "跑团" in html
    assert (
        "New thing" in html and "<dt>expiring soon</dt><dd>7</dd>" in html and re.search(r"<dt>r</dt><dd>5</dd>", html)
    )
    assert html.count("not computed yet") == 1


def test_the_generic_card_is_left_out_when_every_section_has_its_panel(client, make_user, customer, monkeypatch):
    from console import selectors

    monkeypatch.setattr(selectors, "customer_profile_sections", lambda *, customer: dict(EMPTY_SECTIONS))
    login(client, make_user, "operator")
    html = client.get("/customers/cust-001/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "More about this customer" not in html and 'id="h-computed"' not in html
    assert 'data-section="points-ledger"' in html  # the dedicated panels are still there

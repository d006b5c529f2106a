"""Operator pages for customers: access per role, PII masking, search, the 360 view."""

from datetime import UTC, datetime

import factory
import pytest
from django.urls import reverse

from tests.users.factories import CustomerFactory, EventFactory, OrderFactory
from users.models import CustomerTag

ROLES = ["viewer", "operator", "community_manager", "admin"]
PHONE = "13812341633"
EMAIL = "zhang.wei@example.com"


@pytest.fixture
def customer(db):
    referrer = CustomerFactory(external_id="ref-001", nickname="老王")
    c = CustomerFactory(
        external_id="cust-001",
        name="张伟",
        nickname="小张",
        phone=PHONE,
        email=EMAIL,
        channel="douyin",
        referred_by=referrer,
        do_not_contact=False,
        consent_wechat=False,
        paid_orders=2,
        paid_amount="149.50",
        first_order_at=datetime(2026, 3, 1, 10, tzinfo=UTC),
        last_order_at=datetime(2026, 3, 5, 10, tzinfo=UTC),
    )
    CustomerFactory(external_id="cust-002", referred_by=c)
    CustomerTag.objects.create(customer=c, tag="vip")
    OrderFactory(customer=c, external_id="ord-A", amount="99.50", occurred_at=datetime(2026, 3, 1, 10, tzinfo=UTC))
    OrderFactory(customer=c, external_id="ord-B", amount="50.00", occurred_at=datetime(2026, 3, 5, 10, tzinfo=UTC))
    EventFactory(customer=c, type="add_to_cart", properties={"sku": "SKU-42", "contact": PHONE})
    return c


def login(client, make_user, role):
    user = make_user(role)
    client.force_login(user)
    return user


# --- access -----------------------------------------------------------------


@pytest.mark.parametrize("url", ["/customers/", "/customers/cust-001/", "/"])
def test_anonymous_is_sent_to_login(client, customer, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(f"{reverse('login')}?next=")


@pytest.mark.parametrize("role", ROLES)
def test_every_role_can_search_and_open_customers(client, make_user, customer, role):
    login(client, make_user, role)
    assert client.get("/customers/", {"q": "cust-001"}).status_code == 200
    response = client.get("/customers/cust-001/")
    assert response.status_code == 200
    assert "cust-001" in response.content.decode()


def test_user_without_a_role_is_forbidden(client, make_user, customer):
    login(client, make_user, None)
    assert client.get("/customers/").status_code == 403
    assert client.get("/customers/cust-001/").status_code == 403


def test_unknown_customer_is_404(client, make_user, customer):
    login(client, make_user, "operator")
    assert client.get("/customers/no-such-customer/").status_code == 404


# --- PII masking --------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "operator", "community_manager"])
def test_roles_without_pii_permission_see_masked_phone_and_email(client, make_user, customer, role):
    user = login(client, make_user, role)
    assert not user.has_perm("users.view_pii"), f"role {role!r} must not see unmasked PII"
    # Search by id: a phone typed into the search box is echoed back to its typist.
    for page in (client.get("/customers/", {"q": "cust-001"}), client.get("/customers/cust-001/")):
        html = page.content.decode()
        assert "138****1633" in html
        assert "z***@example.com" in html
        assert PHONE not in html  # not even inside the event's properties
        assert EMAIL not in html


def test_admin_sees_unmasked_phone_and_email(client, make_user, customer):
    login(client, make_user, "admin")
    for page in (client.get("/customers/", {"q": PHONE}), client.get("/customers/cust-001/")):
        html = page.content.decode()
        assert PHONE in html
        assert EMAIL in html
        assert "138****1633" not in html


# --- search ---------------------------------------------------------------------


@pytest.mark.parametrize("query", [PHONE, "cust-001", EMAIL, "小张", "张伟"])
def test_search_finds_by_phone_external_id_email_and_name(client, make_user, customer, query):
    login(client, make_user, "admin")
    response = client.get("/customers/", {"q": query})
    assert response.status_code == 200
    assert [row["customer"].external_id for row in response.context["rows"]] == ["cust-001"]
    assert reverse("users:detail", args=["cust-001"]) in response.content.decode()


def test_search_with_no_match_says_so(client, make_user, customer):
    login(client, make_user, "operator")
    response = client.get("/customers/", {"q": "nobody-like-this"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.context["rows"] == []
    assert "No customer matches" in response.content.decode()


def test_search_results_are_paginated(client, make_user, db):
    CustomerFactory.create_batch(30, nickname=factory.Sequence(lambda n: f"pagetest-{n}"))
    login(client, make_user, "operator")
    first = client.get("/customers/", {"q": "pagetest"})
    second = client.get("/customers/", {"q": "pagetest", "page": 2})
    assert len(first.context["rows"]) == 25
    assert len(second.context["rows"]) == 5
    assert first.context["page_obj"].paginator.count == 30
    assert "page=2" in first.content.decode()

"""Issue 9, class 12: searching an exact phone number or email must not confirm who
owns it to a viewer who may not see PII; such viewers search by id and name only."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from tests.users.factories import CustomerFactory
from users import selectors

pytestmark = pytest.mark.django_db

PHONE = "13912345678"
EMAIL = "secret.person@example.org"


@pytest.fixture
def owner(db):
    return CustomerFactory(external_id="c-owner", name="王芳", nickname="芳芳", phone=PHONE, email=EMAIL)


def _found(client, query) -> list[str]:
    response = client.get("/customers/", {"q": query})
    assert response.status_code == 200
    return [row["customer"].external_id for row in response.context["rows"]]


@pytest.mark.parametrize("role", ["viewer", "operator", "community_manager"])
def test_roles_without_pii_cannot_find_a_customer_by_phone_or_email(client, make_user, owner, role):
    client.force_login(make_user(role))
    assert _found(client, PHONE) == []
    assert _found(client, EMAIL) == []
    assert _found(client, EMAIL.upper()) == []
    assert _found(client, "c-owner") == ["c-owner"]  # id and name still work
    assert _found(client, "芳芳") == ["c-owner"]
    assert (
        "searched only for roles that may see them"
        in client.get("/customers/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    )


def test_a_role_with_pii_finds_by_phone_and_email(client, make_user, owner):
    client.force_login(make_user("admin"))
    assert _found(client, PHONE) == ["c-owner"]
    assert _found(client, EMAIL) == ["c-owner"]


def test_a_viewer_given_the_pii_permission_finds_by_phone(client, make_user, owner):
    user = make_user("viewer")
    user.user_permissions.add(Permission.objects.get(content_type__app_label="users", codename="view_pii"))
    client.force_login(user)
    assert _found(client, PHONE) == ["c-owner"]


def test_the_selector_searches_pii_only_when_asked(owner):
    assert list(selectors.customer_list(search=PHONE)) == []
    assert [c.external_id for c in selectors.customer_list(search=PHONE, search_pii=True)] == ["c-owner"]


def test_admin_changelist_search_by_phone_needs_pii(make_user, owner, admin_client):
    staff = make_user(None, username="staff-nopii", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="users", codename__in=["view_customer"])
    )
    client = Client()
    client.force_login(staff)
    response = client.get("/admin/users/customer/", {"q": PHONE})
    assert response.status_code == 200
    assert response.context["cl"].result_count == 0
    assert admin_client.get("/admin/users/customer/", {"q": PHONE}).context["cl"].result_count == 1

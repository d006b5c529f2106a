"""Search that finds (issue 10): any part of an external id, name, nickname, in any
case; phone numbers by their digits and emails in part — only for roles that may
see them; trigram indexes answer it on PostgreSQL."""

import pytest
from django.db import connection
from django.test import Client

from tests.users.factories import CustomerFactory
from users.models import Customer
from users.selectors import customer_list

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(db):
    target = CustomerFactory(
        external_id="wx-UID-004417",
        name="张伟",
        nickname="小张",
        phone="+86 136-7849-9498",
        email="Zhang.Wei@example.com",
    )
    CustomerFactory(external_id="other-1", name="李娜", nickname="娜娜", phone="13900001111", email="li@example.org")
    return target


def _found(term: str, *, pii: bool) -> list[str]:
    return list(customer_list(search=term, search_pii=pii).values_list("external_id", flat=True))


@pytest.mark.parametrize(
    "term", ["9498", "136 7849 9498", "13678499498", "+86 136 7849 9498", "136-7849", "zhang.wei@", "EXAMPLE.COM"]
)
def test_pii_roles_find_by_part_of_the_phone_or_email(people, term):
    assert _found(term, pii=True) == ["wx-UID-004417"]


@pytest.mark.parametrize("term", ["uid-0044", "WX-UID", "004417", "伟", "小张"])
def test_anyone_finds_by_part_of_the_external_id_or_name_in_any_case(people, term):
    assert _found(term, pii=False) == ["wx-UID-004417"]
    assert _found(term, pii=True) == ["wx-UID-004417"]


@pytest.mark.parametrize("term", ["9498", "+86 136-7849-9498", "13678499498", "zhang.wei@example.com", "zhang"])
def test_roles_that_may_not_see_pii_do_not_search_phone_or_email(people, term):
    assert _found(term, pii=False) == []


def test_three_digits_are_not_a_phone_search(people):
    assert _found("949", pii=True) == []


def test_the_search_page_finds_partial_input_per_role_and_says_how_it_matches(people, make_user):
    admin, operator = Client(HTTP_ACCEPT_LANGUAGE="en"), Client(HTTP_ACCEPT_LANGUAGE="en")
    admin.force_login(make_user("admin"))
    operator.force_login(make_user("operator"))
    r = admin.get("/customers/", {"q": "136 7849 9498"})
    assert [row["customer"].external_id for row in r.context["rows"]] == ["wx-UID-004417"]
    html = r.content.decode()
    assert 'placeholder="Part of an external id, name, nickname, phone or email"' in html
    r = operator.get("/customers/", {"q": "9498"})
    assert r.context["rows"] == []
    html = r.content.decode()
    assert 'placeholder="Part of an external id, name or nickname"' in html
    assert "searched only for roles that may see them" in html
    r = operator.get("/customers/", {"q": "uid-004"})
    assert [row["customer"].external_id for row in r.context["rows"]] == ["wx-UID-004417"]


def test_the_search_help_is_in_chinese(people, make_user):
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(make_user("operator"))
    html = client.get("/customers/").content.decode()
    assert "外部 ID、姓名或昵称的任意部分" in html


def test_the_customer_admin_searches_the_same_way(people, make_user):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(make_user("admin"))
    r = client.get("/admin/users/customer/", {"q": "7849 9498"})
    assert [c.external_id for c in r.context["cl"].result_list] == ["wx-UID-004417"]
    r = client.get("/admin/users/customer/", {"q": "uid-0044"})
    assert [c.external_id for c in r.context["cl"].result_list] == ["wx-UID-004417"]


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("term", "pii", "index"),
    [
        ("7849 9498", True, "customer_phone_digits_trgm"),
        ("uid-0044", False, "customer_extid_trgm"),
        ("zhang.wei", True, "customer_email_trgm"),
        ("nickname-x", False, "customer_nickname_trgm"),
    ],
)
def test_on_postgres_the_trigram_indexes_answer_the_search(people, term, pii, index):
    Customer.objects.bulk_create(
        Customer(external_id=f"bulk-{i}", name=f"客户{i}", nickname=f"nick{i}", phone=f"138{i:08d}")
        for i in range(3000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE users_customer")
        cursor.execute("SET LOCAL enable_seqscan = off")  # small table: force the index paths,
        cursor.execute("SET LOCAL enable_indexscan = off")  # so a bitmap scan must use a trigram index
        plan = customer_list(search=term, search_pii=pii).explain()
    assert index in plan, plan

"""The customer list and profile endpoints (composed in console.api): pagination,
filters, the contract keys. Stage/tier/segment filters: tests/segments/test_api.py."""

from datetime import timedelta

from django.utils import timezone

from tests.users.factories import CustomerFactory
from tests.users.test_api import CUSTOMER_ITEMS, CUSTOMERS, LIST, assert_error, post
from users.models import Customer, CustomerTag

# --- list, profile -------------------------------------------------------------


def test_customer_list_is_cursor_paginated_without_duplicates(api):
    CustomerFactory.create_batch(7)
    seen, url, pages = [], f"{LIST}?page_size=3", 0
    while url:
        body = api.get(url).json()
        assert set(body) == {"next", "previous", "results"}
        assert len(body["results"]) <= 3
        seen += [c["external_id"] for c in body["results"]]
        url, pages = body["next"], pages + 1
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == set(Customer.objects.values_list("external_id", flat=True))


def test_customer_list_filters_by_tag(api):
    tagged = CustomerFactory()
    CustomerTag.objects.create(customer=tagged, tag="vip")
    CustomerTag.objects.create(customer=tagged, tag="new")
    CustomerFactory()
    body = api.get(LIST, {"tag": "vip"}).json()
    assert [c["external_id"] for c in body["results"]] == [tagged.external_id]
    assert body["results"][0]["tags"] == ["new", "vip"]


def test_customer_list_filters_by_updated_since(api):
    old, new = CustomerFactory(), CustomerFactory()
    Customer.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=10))
    since = (timezone.now() - timedelta(days=1)).isoformat()
    body = api.get(LIST, {"updated_since": since}).json()
    assert [c["external_id"] for c in body["results"]] == [new.external_id]


def test_invalid_updated_since_is_400(api):
    error = assert_error(api.get(LIST, {"updated_since": "last tuesday"}), 400, "invalid_filter")
    assert "updated_since" in error["details"]


def test_profile_404_has_the_error_shape(api):
    assert_error(api.get("/api/v1/customers/ghost"), 404, "not_found")


SPEC_CUSTOMER_KEYS = {
    "external_id",
    "name",
    "phone",
    "email",
    "gender",
    "birthday",
    "city",
    "timezone",
    "signup_at",
    "channel",
    "referred_by",
    "tags",
    "consent",
    "do_not_contact",
}
SPEC_PROFILE_KEYS = {"rfm", "tier", "stage", "churn", "segments", "points", "level", "badges", "communities"}
# Fields the API adds beyond the contract's minimum ("more fields may be added").
EXTRA_KEYS = {"nickname", "updated_at"}


def test_profile_has_the_contract_keys(api):
    post(api, CUSTOMERS, CUSTOMER_ITEMS)
    profile = api.get("/api/v1/customers/c1").json()
    assert set(profile) == SPEC_CUSTOMER_KEYS | SPEC_PROFILE_KEYS | EXTRA_KEYS
    assert set(profile["consent"]) == {"push", "sms", "email", "wechat", "in_app"}
    assert profile["referred_by"] == "c0"
    assert profile["tags"] == ["new", "vip"]
    assert profile["birthday"] == "1990-05-01"
    assert profile["consent"]["sms"] is True and profile["consent"]["push"] is False


def test_list_items_have_the_contract_keys(api):
    CustomerFactory()
    [item] = api.get(LIST).json()["results"]
    assert set(item) == SPEC_CUSTOMER_KEYS | EXTRA_KEYS

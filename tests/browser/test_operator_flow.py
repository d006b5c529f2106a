"""An operator's first minutes, in a real headless Chromium against a live server:
sign in, read the dashboard, find a customer, open the 360 page, switch to English."""

import pytest

from tests.chromium import CHROMIUM, chromium_page
from tests.users.factories import CustomerFactory, OrderFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]


@pytest.fixture
def page(monkeypatch):
    with chromium_page(monkeypatch, timeout_ms=15_000) as page:
        yield page


@pytest.fixture
def flow_data(make_user):
    """Written before Playwright starts: once its loop runs in this thread, an ORM call
    would open a second connection in another context and hold the test database open."""
    make_user("operator", username="olivia")
    customer = CustomerFactory(external_id="web-001", nickname="小美", phone="13912345678", channel="douyin")
    OrderFactory(customer=customer, external_id="web-order-1")


def test_operator_signs_in_finds_a_customer_and_switches_to_english(flow_data, live_server, page):
    requests_elsewhere = []
    page.on("request", lambda r: None if r.url.startswith(live_server.url) else requests_elsewhere.append(r.url))

    page.goto(f"{live_server.url}/")
    assert "/login/" in page.url
    page.fill("#id_username", "olivia")
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit].btn-primary")

    page.wait_for_selector(".kpi-grid")
    assert page.locator("h1").inner_text() == "看板"
    assert page.locator('[data-kpi="customers_total"] .kpi-value').inner_text() == "1"
    assert page.locator("svg.chart rect").count() == 30

    page.click("nav.mainnav >> text=用户")
    page.fill("#id_q", "小美")  # an operator may not see PII, so searches by name (issue 9: no phone oracle)
    page.press("#id_q", "Enter")
    page.wait_for_selector('table[data-table="customers"]')
    page.click("text=web-001")

    page.wait_for_selector('[data-section="segments-why"]')
    assert "web-001" in page.url
    assert "小美" in page.locator("h1").inner_text()
    assert "尚未评分" in page.locator('[data-section="segments-why"]').inner_text()
    assert "web-order-1" in page.locator('table[data-table="orders"]').inner_text()

    page.select_option("#language-select", "en")
    page.click('[data-testid="language-submit"]')
    page.wait_for_selector("text=Activity timeline")
    assert "web-001" in page.url  # set_language brings the operator back to the same page
    assert "Not scored yet" in page.locator('[data-section="segments-why"]').inner_text()
    assert page.locator("html").get_attribute("lang") == "en"
    assert requests_elsewhere == []


@pytest.fixture
def builder_data(make_user):
    make_user("operator", username="oscar")
    for i, city in enumerate(["上海", "上海", "北京"]):
        CustomerFactory(external_id=f"city-{i}", city=city)


def _sign_in(page, live_server, username):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit].btn-primary")
    page.wait_for_selector(".kpi-grid")


def test_operator_builds_a_segment_with_a_live_preview_and_saves_it(builder_data, live_server, page):
    _sign_in(page, live_server, "oscar")
    page.goto(f"{live_server.url}/segments/new")
    page.click('[data-role="add"]')
    row = page.locator('[data-role="row"]').first
    row.locator('[data-role="field"]').select_option("city")
    row.locator('[data-role="op"]').select_option("eq")
    row.locator('[data-role="value"]').fill("上海")
    page.wait_for_selector('[data-segment-preview][data-state="ok"]')
    assert page.locator('[data-segment-preview] [data-role="size"]').inner_text() == "2"
    assert sorted(page.locator('[data-role="sample"] a').all_inner_texts()) == ["city-0", "city-1"]

    # A number where a number is due: the preview names the bad part, in the operator's language.
    page.click('[data-role="add"]')
    second = page.locator('[data-role="row"]').nth(1)
    second.locator('[data-role="field"]').select_option("r_score")
    second.locator('[data-role="value"]').fill("9")
    page.wait_for_selector('[data-segment-preview][data-state="error"]')
    error = page.locator('[data-segment-preview] [data-role="error"]').inner_text()
    assert error.startswith("definition.conditions[1].value") and "1" in error and "5" in error
    second.locator('[data-role="remove"]').click()
    page.wait_for_selector('[data-segment-preview][data-state="ok"]')

    page.fill("#id_name", "上海用户")
    page.fill("#id_slug", "shanghai")
    page.click("#segment-form button[type=submit]")
    page.wait_for_selector('[data-kpi="segment-size"]')
    assert page.url.endswith("/segments/shanghai/")
    assert page.locator('[data-kpi="segment-size"] .kpi-value').inner_text() == "2"
    assert sorted(page.locator('table[data-table="members"] tbody tr td:first-child').all_inner_texts()) == [
        "city-0",
        "city-1",
    ]


def test_operator_adjusts_points_with_a_reason_and_sees_the_ledger(builder_data, live_server, page):
    _sign_in(page, live_server, "oscar")
    page.goto(f"{live_server.url}/points/city-2/adjust")
    page.fill("#id_amount", "-5")
    page.fill("#id_reason", "补偿")
    page.click("form.stack button[type=submit]")
    assert "不足" in page.locator('[data-error="form"]').inner_text()  # a balance of 0 cannot give 5
    page.fill("#id_amount", "120")
    page.fill("#id_reason", "活动补发")
    page.click("form.stack button[type=submit]")
    page.wait_for_selector('[data-section="points-ledger"]')
    assert page.locator('[data-field="points-balance"]').inner_text() == "120"
    ledger = page.locator('table[data-table="points-ledger"]').inner_text()
    assert "活动补发" in ledger and "oscar" in ledger

"""An operator's first minutes, in a real headless Chromium against a live server:
sign in, read the dashboard, find a customer, open the 360 page, switch to English."""

from pathlib import Path

import pytest

from tests.users.factories import CustomerFactory, OrderFactory

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]


@pytest.fixture
def page(monkeypatch):
    # Playwright's sync API runs an event loop in this thread, and Django refuses
    # synchronous database calls while one runs; they are safe here (one thread).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        context.close()
        browser.close()


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
    page.fill("#id_q", "13912345678")
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

"""The segment builder in a real headless Chromium, in Chinese and in English: every
field with every comparison, with no JavaScript error and no console error (a failed
request is one), choices that submit internal keys under the operator's labels, and a
segment saved from an event condition and a date-range condition."""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from communities.models import CommunityGroup
from communities.services.groups import group_save
from incentives.models import Level
from segments import services
from segments.models import Segment
from tests.users.factories import CustomerFactory, EventFactory, OrderFactory

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]


@pytest.fixture
def builder_data(make_user):
    """Six customers (written before Playwright starts, see test_operator_flow): check-ins
    in the last 30 days and paid orders in the last 20 days meet for bd-0 and bd-4 only."""
    bella = make_user("operator", username="bella")
    # A community group, so the "community" condition offers it (an unknown code is refused).
    group_save(group=CommunityGroup(code="runners", name="跑团 Runners", owner=bella), actor=None)
    now = timezone.now()
    plan = {  # external id: (recent check-ins, old check-ins, recent orders, old orders)
        "bd-0": (3, 0, 2, 0),
        "bd-1": (3, 0, 0, 1),
        "bd-2": (1, 0, 1, 0),
        "bd-3": (0, 2, 1, 0),
        "bd-4": (2, 0, 1, 0),
        "bd-5": (0, 0, 0, 1),
    }
    for external_id, (recent, old, orders, old_orders) in plan.items():
        customer = CustomerFactory(external_id=external_id, signup_at=now - timedelta(days=400), channel="douyin")
        for k in range(recent):
            EventFactory(customer=customer, type="checkin", occurred_at=now - timedelta(days=1 + k))
        for k in range(old):
            EventFactory(customer=customer, type="checkin", occurred_at=now - timedelta(days=40 + k))
        for k in range(orders):
            OrderFactory(customer=customer, amount=Decimal("120"), occurred_at=now - timedelta(days=3 + k))
        for k in range(old_orders):
            OrderFactory(customer=customer, amount=Decimal("80"), occurred_at=now - timedelta(days=200 + k))
    services.recompute_sync()
    return {"levels": list(Level.objects.order_by("threshold").values_list("name", flat=True))}


def _browser(pw, locale):
    browser = pw.chromium.launch(
        executable_path=str(CHROMIUM),
        headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )
    page = browser.new_context(locale=locale, viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(15_000)
    errors = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    return browser, page, errors


def _sign_in(page, live_server, path="/segments/new"):
    page.goto(f"{live_server.url}/login/?next={path}")
    page.fill("#id_username", "bella")
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit].btn-primary")
    page.wait_for_selector("[data-segment-builder]:not([hidden])")


def _fill_row(row):
    """A value in every control of the row the server accepts for any field."""
    for control in row.locator("input").all():
        kind = control.get_attribute("type")
        role = control.get_attribute("data-role")
        if role in ("from", "to"):
            continue  # optional
        control.fill("2026-01-01" if kind == "date" else "30" if role == "within_days" else "1")
    for multi in row.locator("select[multiple]").all():
        multi.select_option(index=0)


LOCALES = {
    "zh-CN": {"unit": "天", "checkin": "签到", "champions_key": "champions", "level": "金卡 Gold", "day": "天"},
    "en-US": {"unit": "days", "checkin": "check-in", "champions_key": "champions", "level": "金卡 Gold", "day": "days"},
}


@pytest.mark.parametrize("locale", list(LOCALES))
def test_every_condition_type_with_every_comparison_has_no_js_error(builder_data, live_server, monkeypatch, locale):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    expected = LOCALES[locale]
    seen = {}
    with sync_playwright() as pw:
        browser, page, errors = _browser(pw, locale)
        _sign_in(page, live_server)
        page.fill("#id_name", "every field")
        fields = page.evaluate(
            "JSON.parse(document.getElementById('segment-builder-meta').textContent).fields.map(f => f.name)"
        )
        for field in fields:
            # A new row for each condition type, chosen in its field select (where the error was thrown).
            page.click("[data-role=add]")
            row = page.locator("[data-role=row]").last
            row.locator("[data-role=field]").select_option(field)
            ops = row.locator("[data-role=op] option").evaluate_all("os => os.map(o => o.value)")
            for op in ops:
                if locale != "en-US" and op != ops[-1]:
                    # In Chinese every comparison is drawn and filled (a failed preview would
                    # still log a console error), but only the last one's answer is awaited.
                    row.locator("[data-role=op]").select_option(op)
                    _fill_row(row)
                    continue
                # Each complete row is previewed: the answer must be a size, not an error.
                with page.expect_response(lambda r: r.url.endswith("/segments/preview")) as answer:
                    row.locator("[data-role=op]").select_option(op)
                    _fill_row(row)
                assert answer.value.status == 200, (field, op, answer.value.text())
                # (No wait_for_function: its string would be eval'd, which the CSP refuses.)
                page.wait_for_selector("[data-segment-preview][data-state=ok]")
            # What the value controls offer (value → label), drawn for the first comparison again.
            row.locator("[data-role=op]").select_option(ops[0])
            value = row.locator("select[data-role=value]")
            if value.count():
                seen[field] = dict(
                    value.locator("option").evaluate_all(
                        "os => os.filter(o => !o.hasAttribute('data-unlisted')).map(o => [o.value, o.textContent])"
                    )
                )
            if field == "event":
                seen["event_type"] = dict(
                    row.locator("[data-role=event_type] option").evaluate_all(
                        "os => os.map(o => [o.value, o.textContent])"
                    )
                )
                seen["unit"] = row.locator("[data-role=unit]").inner_text()
            row.locator("[data-role=remove]").click()
        browser.close()

    assert errors == []
    assert len(fields) >= 30
    # Internal keys submitted, the operator's words shown.
    assert {"champions", "loyal", "at_risk", "other"} <= set(seen["rfm_segment"])
    assert {"high_value", "potential", "silent", "general"} <= set(seen["rfm_group"])
    assert list(seen["level"]) == builder_data["levels"] and "金卡 Gold" in seen["level"]
    assert {"organic", "douyin", "wechat", "app_store", "referral", "xiaohongshu", "ads"} <= set(seen["channel"])
    assert {"new", "growing", "mature"} <= set(seen["stage"]) and set(seen["gender"]) == {
        "unknown",
        "female",
        "male",
        "other",
    }
    assert seen["event_type"]["checkin"] == expected["checkin"]
    assert seen["community"] == {"runners": "跑团 Runners (runners)"}
    assert seen["unit"] == expected["unit"]
    if locale == "zh-CN":
        assert seen["stage"]["mature"] != "mature" and seen["tier"]["super_vip"] != "super vip"


def test_a_segment_saved_from_an_event_and_a_date_range_condition(builder_data, live_server, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    today = timezone.localdate()
    with sync_playwright() as pw:
        browser, page, errors = _browser(pw, "zh-CN")
        _sign_in(page, live_server)
        page.fill("#id_name", "签到常客 VIP")
        page.click("[data-role=add]")
        first = page.locator("[data-role=row]").nth(0)
        first.locator("[data-role=field]").select_option("event")
        first.locator("[data-role=op]").select_option("gte")
        first.locator("[data-role=event_type]").select_option("checkin")
        first.locator("[data-role=value]").fill("2")
        first.locator("[data-role=within_days]").fill("30")
        page.click("[data-role=add]")
        second = page.locator("[data-role=row]").nth(1)
        second.locator("[data-role=field]").select_option("orders")
        second.locator("[data-role=op]").select_option("gte")
        second.locator("[data-role=value]").fill("1")
        second.locator("[data-role=from]").fill((today - timedelta(days=20)).isoformat())
        second.locator("[data-role=to]").fill(today.isoformat())
        expect(page.locator("[data-segment-preview] [data-role=size]")).to_have_text("2")
        sample = page.locator("[data-role=sample] a").all_inner_texts()
        page.click("button[type=submit].btn-primary")
        page.wait_for_selector('table[data-table="members"]')
        members = page.locator('table[data-table="members"] tbody a').all_inner_texts()
        url = page.url
        browser.close()

    assert errors == []
    assert sample == ["bd-0", "bd-4"] and members == ["bd-0", "bd-4"]
    segment = Segment.objects.get(name="签到常客 VIP")
    assert segment.slug == "qian-dao-chang-ke-vip" and url.endswith("/segments/qian-dao-chang-ke-vip/")
    assert segment.size == 2
    event, orders = segment.definition["conditions"]
    assert event == {"field": "event", "op": "gte", "value": 2, "event_type": "checkin", "within_days": 30}
    assert orders["field"] == "orders" and orders["from"] == (today - timedelta(days=20)).isoformat()

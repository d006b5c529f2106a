"""An operator works a ticket in a real headless Chromium against a live server: signs
in, opens the queue from the navigation, picks the ticket with the keyboard (j, Enter),
takes it, leaves an internal note with n and Ctrl+Enter, fills the reply from a canned
reply, sends it and resolves the ticket — once in English and once in Chinese."""

import re

import pytest

from feedback.models import CannedReply, Message, Status, Team, Ticket
from feedback.services import tickets as services
from tests.chromium import CHROMIUM, chromium_page
from tests.users.factories import CustomerFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]

LANGUAGES = {
    "en": {"locale": "en-US", "nav": "Tickets", "resolved": "resolved", "note_badge": "Internal note"},
    "zh": {"locale": "zh-CN", "nav": "工单", "resolved": "已解决", "note_badge": "内部备注"},
}


@pytest.fixture
def desk(make_user):
    """Written before Playwright starts (see test_operator_flow.py)."""
    olivia = make_user("operator", username="olivia")
    Team.objects.get(code="operations").members.add(olivia)
    customer = CustomerFactory(external_id="web-101", nickname="小美")
    ticket = services.ticket_open(
        customer=customer, category="question", subject="积分没有到账", body="昨天签到的积分没有到账"
    ).ticket
    reply = CannedReply.objects.create(
        name="积分补发",
        body="您好 {{ customer_name }}，工单 #{{ ticket_id }}「{{ subject }}」已处理。—— {{ operator_name }}",
    )
    return {
        "ticket": ticket.pk,
        "reply": reply.pk,
        "expected": f"您好 小美，工单 #{ticket.pk}「积分没有到账」已处理。—— olivia",
    }


@pytest.mark.parametrize("language", ["en", "zh"])
def test_operator_takes_a_ticket_replies_with_a_canned_reply_and_resolves_it(desk, live_server, monkeypatch, language):
    words = LANGUAGES[language]
    with chromium_page(monkeypatch, timeout_ms=20_000, locale=words["locale"]) as page:
        elsewhere = []
        page.on("request", lambda r: None if r.url.startswith(live_server.url) else elsewhere.append(r.url))
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", "olivia")
        page.fill("#id_password", "correct-horse-battery")
        page.click("button[type=submit].btn-primary")
        page.wait_for_selector(".kpi-grid")

        page.click(f"nav.mainnav >> text={words['nav']}")
        page.wait_for_selector('table[data-table="queue"]')
        row = page.locator(f'tr[data-ticket="{desk["ticket"]}"]')
        assert "小美" in row.inner_text()
        page.keyboard.press("?")
        assert page.locator('[data-role="shortcuts"]').get_attribute("open") is not None
        page.keyboard.press("j")
        assert "fb-selected" in row.get_attribute("class")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(rf"/feedback/{desk['ticket']}/$"))

        page.click('[data-role="take"]')
        page.wait_for_selector('[data-field="assignee"]:has-text("olivia")')

        page.keyboard.press("n")
        page.keyboard.type("客户是老用户，先补发")
        page.keyboard.press("Control+Enter")
        page.wait_for_selector('[data-message][data-kind="note"]')
        assert words["note_badge"] in page.locator('[data-message][data-kind="note"]').inner_text()

        page.select_option("#canned-select", str(desk["reply"]))
        page.wait_for_function(
            "expected => document.getElementById('id_reply-body').value === expected", arg=desk["expected"]
        )
        page.click('[data-role="send-resolve"]')
        page.wait_for_selector('[data-field="status"][data-status="resolved"]')
        assert page.locator('[data-field="status"]').inner_text() == words["resolved"]
        reply = page.locator('[data-message][data-kind="reply"] [data-role="message-body"]')
        assert reply.inner_text() == desk["expected"]
        assert page.locator("html").get_attribute("lang") == ("en" if language == "en" else "zh-hans")
        assert elsewhere == []

    # After Playwright's loop is gone, the database is read on the test's own connection.
    ticket = Ticket.objects.get(pk=desk["ticket"])
    assert (ticket.status, ticket.assignee.username) == (Status.RESOLVED, "olivia")
    assert list(ticket.messages.values_list("kind", "body")) == [
        (Message.Kind.NOTE, "客户是老用户，先补发"),
        (Message.Kind.REPLY, desk["expected"]),
    ]

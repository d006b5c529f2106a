"""Every operator page in Chinese, as each role sees it in a real Chromium: no English
UI word from a known list, and no phrase of the zh_Hans catalogue left untranslated.
The admin index and every changelist are visited as the admin role."""

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from communities.management.commands.seed_demo_communities import demo_communities_write
from communities.models import Alert, CommunityGroup, SopTemplate
from feedback.models import CannedReply, Team
from feedback.services import tickets as ticket_services
from incentives.services import points_post
from segments import services as segment_services
from tests.chromium import CHROMIUM, chromium_page
from tests.users.factories import CustomerFactory, EventFactory, OrderFactory

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]

# English words a Chinese operator met on day one (issue 10); matched as whole words.
ENGLISH_WORDS = [
    # RFM segments and groups, lifecycle codes
    "champions", "loyal", "at risk", "at_risk", "potential loyalist", "promising", "need attention",
    "about to sleep", "hibernating", "cant lose them", "can't lose them", "cant_lose_them", "high value",
    # channels and event types as stored
    "organic", "douyin", "wechat", "app_store", "referral", "xiaohongshu", "ads",
    "add_to_cart", "page_view", "checkin", "login",
    # recompute phases
    "aggregate", "aggregate_wall", "model_fit", "model_predict", "patch", "custom_segments",
    # slugs instead of names
    "stage-mature", "stage-new", "tier-active", "tier-normal", "rfm-segment",
    # admin column headers and header
    "KEY", "SIZE", "RUN", "CUSTOMER", "CREATED BY", "AS OF", "Django",
    # server messages
    "exists already", "not known customers", "nothing was saved",
]  # fmt: skip
WORDS_RE = re.compile(r"(?<![\w-])(" + "|".join(re.escape(w) for w in ENGLISH_WORDS) + r")(?![\w-])")


# Pages whose subject is the stored keys themselves.
DATA_KEY_PAGES = ("/admin/core/displayname/",)
# Ids the system writes as data, shown where ids are listed: the community ingestion's
# event external ids (``community:checkin:<group>:<customer>:<day>``) are not UI words.
DATA_ID_RE = re.compile(r"(?<![\w-])community:[\w:.-]+")


def _catalogue_phrases() -> list[str]:
    """Catalogue msgids of two words or more whose translation differs: if one shows on
    a Chinese page, a string escaped translation (or its msgid changed)."""
    phrases = []
    for entry in polib.pofile(str(CATALOGUE)):
        msgid = entry.msgid
        if entry.obsolete or entry.msgstr == msgid or re.search(r"[%{<]", msgid):
            continue
        # Words are what whitespace separates ("check-in" is one): a one-word msgid also
        # occurs inside data (a rule named "每日签到 Daily check-in").
        if len(msgid.split()) >= 2 and re.search(r"[A-Za-z]", msgid) and msgid not in entry.msgstr:
            phrases.append(msgid)
    return phrases


def _untranslated(text: str, phrases: list[str]) -> list[str]:
    found = sorted(set(WORDS_RE.findall(text)))
    found += [p for p in phrases if re.search(rf"(?<![\w-]){re.escape(p)}(?![\w-])", text)]
    return found


def test_the_checker_finds_english_and_untranslated_msgids():
    phrases = _catalogue_phrases()
    assert "Activity timeline" in phrases
    assert _untranslated("冠军 champions · 渠道 douyin · KEY · 活动时间线", phrases) == ["KEY", "champions", "douyin"]
    assert _untranslated("Activity timeline", phrases) == ["Activity timeline"]
    assert _untranslated("看板 用户 分群 Douyin-ads-campaign", phrases) == []
    assert _untranslated(DATA_ID_RE.sub("", "签到 community:checkin:3:7:2026-12-01"), phrases) == []
    assert _untranslated(DATA_ID_RE.sub("", "类型 checkin"), phrases) == ["checkin"]


@pytest.fixture
def ui_data(make_user):
    """A small shop, scored, with a custom segment, events and points; written before
    Playwright starts (see test_operator_flow.py)."""
    operations = Team.objects.get(code="operations")
    for role in ("viewer", "operator", "community_manager", "admin"):
        operations.members.add(make_user(role, username=f"zh-{role}"))
    now = timezone.now()
    channels = ["organic", "douyin", "wechat", "app_store", "referral", "xiaohongshu", "ads"]
    customers = []
    for i in range(14):
        customer = CustomerFactory(
            external_id=f"zh-{i:03d}",
            nickname=f"顾客{i}",
            city="上海",
            channel=channels[i % len(channels)],
            signup_at=now - timedelta(days=420),
        )
        customers.append(customer)
        for k in range(i % 7):
            OrderFactory(customer=customer, amount=Decimal(300 * (i + 1)), occurred_at=now - timedelta(days=2 + 40 * k))
    for c in customers[:4]:
        EventFactory(customer=c, type="add_to_cart", properties={"sku": "SKU-00042", "qty": 1}, occurred_at=now)
        EventFactory(customer=c, type="page_view", properties={"page": "product"}, occurred_at=now)
        EventFactory(customer=c, type="checkin", properties={"platform": "ios"}, occurred_at=now)
        EventFactory(customer=c, type="login", properties={"platform": "android", "first": True}, occurred_at=now)
    segment_services.recompute_sync()
    segment_services.segment_save(
        name="上海用户", slug="shanghai", definition={"field": "city", "op": "eq", "value": "上海"}
    )
    points_post(customer=customers[1], kind="earn", amount=1200, reason="活动奖励", idempotency_key="zh-ui-1")
    ticket = _ticket_worked(customers[1], operations)
    communities = _communities()
    return {
        "customer": customers[5].external_id,
        "points_customer": customers[1].external_id,
        "ticket": ticket.pk,
        **communities,
        "campaign": _campaign_with_reach_outs(customers[5]).pk,
    }


def _communities() -> dict:
    """The demo's community groups, small, owned by zh-community_manager (and zh-admin):
    members, approved templates, calendar, messages, alerts, risk actions, health."""
    User = get_user_model()
    users = {
        "admin": User.objects.get(username="zh-admin"),
        "community": User.objects.get(username="zh-community_manager"),
    }
    demo_communities_write(seed=3, members=12, days=4, users=users)
    group = CommunityGroup.objects.get(code="demo-wx-vip")
    template = SopTemplate.objects.get(code="demo-faq-refund")
    return {
        "group": group.pk,
        "alert": Alert.objects.filter(group=group).order_by("pk").first().pk,
        "template": template.pk,
        "version": template.approved_version_id,
    }


def _campaign_with_reach_outs(customer):
    """A draft A/B campaign to the Shanghai segment (its page shows the preview), and
    the 360 customer's reach-outs: one sent, one held by a cap, one without consent."""
    from campaigns.models import Delivery
    from campaigns.services import campaigns as campaign_services

    campaign = campaign_services.campaign_create(
        data={"name": "双十一促销", "channel": "push", "segments": ["shanghai"], "cost": "500"},
        variants=[
            campaign_services.VariantSpec("A", 50, "demo-faq-refund", subject="双十一"),
            campaign_services.VariantSpec("B", 50, "demo-faq-refund", subject="限时优惠"),
        ],
    )
    now = timezone.now()
    variant = campaign.variants.get(code="A")
    for n, (status, reason, rule) in enumerate(
        [("sent", "", ""), ("deferred", "cap", "cap:push-3-7"), ("suppressed", "no_consent", "consent")]
    ):
        Delivery.objects.create(
            key=f"zh-ui-{n}", campaign=campaign, variant=variant, customer=customer, channel="push",
            category="marketing", status=status, reason=reason, rule=rule, due_at=now,
            send_after=now + timedelta(hours=3) if status == "deferred" else None,
            sent_at=now if status == "sent" else None,
        )  # fmt: skip
    return campaign


def _ticket_worked(customer, team):
    """A ticket with a bit of everything its page shows: a priority from the VIP rule,
    an assignee, a reply, an internal note, a duplicate merged in, a history."""
    operator = team.members.get(username="zh-operator")
    ticket = ticket_services.ticket_open(
        customer=customer, category="complaint", subject="签到积分没到账", body="昨天签到了，积分没有增加", team=team
    ).ticket
    duplicate = ticket_services.ticket_open(customer=customer, category="complaint", subject="积分", body="同上").ticket
    ticket_services.ticket_assign(ticket=ticket, team=team, assignee=operator, actor=operator)
    ticket_services.ticket_reply(ticket=ticket, body="正在核查", actor=operator)
    ticket_services.ticket_note(ticket=ticket, body="查签到日志", actor=operator)
    ticket_services.ticket_update(ticket=ticket, actor=operator, priority="urgent")
    ticket_services.ticket_merge(duplicate=duplicate, into=ticket, actor=operator)
    CannedReply.objects.create(name="致歉", body="您好 {{ customer_name }}，抱歉给您带来不便。")
    return ticket


@pytest.fixture
def browser_page(monkeypatch):
    with chromium_page(monkeypatch, timeout_ms=20_000) as page:
        yield page


def _operator_pages(data) -> list[str]:
    return [
        "/",
        f"/customers/?q={data['customer']}",
        f"/customers/{data['customer']}/",
        f"/customers/{data['points_customer']}/",
        "/segments/",
        "/segments/shanghai/",
        "/segments/stage-mature/",
        "/segments/new",
        "/segments/shanghai/edit",
        "/segments/transitions",
        "/segments/upload",
        "/points/",
        f"/points/{data['points_customer']}/adjust",
        "/feedback/",
        "/feedback/?status=all&sla=on_track&assignee=me",
        f"/feedback/{data['ticket']}/",
        "/feedback/new",
        *_community_pages(data),
        *_campaign_pages(data),
        "/no-such-page/",
    ]


def _community_pages(data) -> list[str]:
    """Every community page an owner opens, by URL name, so a renamed route fails here loudly."""
    group = {"group_id": data["group"]}
    names = [
        ("communities:groups", {}),
        ("communities:group", group),
        ("communities:calendar", {}),
        ("communities:group-calendar", group),
        ("communities:health", {}),
        ("communities:group-health", group),
        ("communities:alerts", {}),
        ("communities:alert", {"alert_id": data["alert"]}),
        ("communities:alert-rules", {}),
        ("communities:group-risk", group),
        ("communities:templates", {}),
        ("communities:template", {"template_id": data["template"]}),
        ("communities:template-preview", {"version_id": data["version"]}),
    ]
    return [reverse(name, kwargs=kwargs) for name, kwargs in names]


def _campaign_pages(data) -> list[str]:
    """The campaign pages by URL name: the list (and one filtered), a new one, a campaign, its edit page."""
    campaign = {"campaign_id": data["campaign"]}
    names = [
        ("campaigns:list", {}),
        ("campaigns:new", {}),
        ("campaigns:detail", campaign),
        ("campaigns:edit", campaign),
    ]
    return [reverse(name, kwargs=kwargs) for name, kwargs in names] + [reverse("campaigns:list") + "?status=draft"]


def _admin_pages(page, base: str) -> list[str]:
    page.goto(f"{base}/admin/")
    links = page.eval_on_selector_all("#content-main table th[scope=row] a", "els => els.map(e => e.href)")
    return ["/admin/", *sorted({link.removeprefix(base) for link in links})]


@pytest.mark.parametrize("role", ["viewer", "operator", "community_manager", "admin"])
def test_every_page_is_chinese_for_every_role(ui_data, live_server, browser_page, role):
    page, base = browser_page, live_server.url
    page.goto(f"{base}/login/")
    page.fill("#id_username", f"zh-{role}")
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit].btn-primary")
    page.wait_for_selector(".kpi-grid")

    # The Content-Security-Policy (no inline script, nothing from another site) is obeyed
    # by every page: the browser reports each violation on the console.
    refused = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    phrases = _catalogue_phrases()
    urls = _operator_pages(ui_data) + (_admin_pages(page, base) if role == "admin" else [])
    problems, visited = {}, []
    for url in urls:
        response = page.goto(f"{base}{url}")
        visited.append((url, response.status))
        assert page.locator("html").get_attribute("lang") == "zh-hans", url
        text = page.locator("body").inner_text()
        if url.startswith(DATA_KEY_PAGES):
            # The display names' own list shows the stored keys next to their names.
            text = page.locator("#result_list").inner_text(), text
            text = text[1].replace(text[0], "")
        found = _untranslated(DATA_ID_RE.sub("", text), phrases)
        if found:
            problems[f"{url} ({response.status})"] = found
    assert problems == {}, "\n".join(f"{url}: {found}" for url, found in problems.items())
    statuses = dict(visited)
    assert statuses["/"] == 200 and statuses["/no-such-page/"] == 404
    assert statuses["/feedback/"] == statuses[f"/feedback/{ui_data['ticket']}/"] == 200  # the ticket pages were read
    community = [url for url in _community_pages(ui_data) if statuses[url] == 200]
    if role in ("community_manager", "admin"):  # the owners: every community page opens
        assert community == _community_pages(ui_data)
    else:  # viewers and operators see every group, read-only
        assert {"/communities/", f"/communities/groups/{ui_data['group']}/"} <= set(community)
    campaigns = [statuses[url] for url in _campaign_pages(ui_data)]
    if role == "community_manager":  # no campaigns permission: the 403 page, in Chinese
        assert set(campaigns) == {403}
    elif role == "viewer":  # reads, does not write
        assert campaigns == [200, 403, 200, 403, 200]
    else:
        assert set(campaigns) == {200}
    if role == "admin":
        assert sum(1 for url, status in visited if url.startswith("/admin/") and status == 200) >= 20
    assert refused == []

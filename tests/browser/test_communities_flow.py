"""A community manager runs their groups in a real headless Chromium against a live
server, on the demo's communities (``seed_demo_communities``, small): signs in, reads
the home page's due-posts and keyword-alerts cards, opens a group and its calendar,
marks one of today's posts done (who and when show), opens an alert from the home page
and dismisses it with a reason, and previews an SOP template for a member."""

import pytest

from communities.management.commands.seed_demo_communities import demo_communities_write
from communities.models import Alert, AlertStatus, CommunityGroup, ContentPost, Membership, PostStatus, SopTemplate
from core.timezones import operator_timezone
from tests.chromium import CHROMIUM, chromium_page
from tests.users.factories import CustomerFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]


@pytest.fixture
def groups(make_user):
    """Written before Playwright starts (see test_operator_flow.py)."""
    users = {"admin": make_user("admin", username="admin"), "community": make_user("community_manager", username="mia")}
    CustomerFactory.create_batch(40)
    demo_communities_write(seed=7, members=30, days=5, users=users)
    vip = CommunityGroup.objects.get(code="demo-wx-vip")
    member = Membership.objects.filter(group=vip, left_at__isnull=True, role="member").select_related("customer")[0]
    return {
        "vip": vip.pk,
        "faq": SopTemplate.objects.get(code="demo-faq-refund").pk,
        "member": member.customer.external_id,
        "nickname": member.customer.nickname or member.customer.external_id,
        "admin_group": CommunityGroup.objects.get(code="demo-wx-koc").name,
    }


def test_community_manager_works_the_day_from_the_home_page(groups, live_server, monkeypatch):
    base = live_server.url
    with chromium_page(monkeypatch, timeout_ms=20_000) as page:
        elsewhere = []
        page.on("request", lambda r: None if r.url.startswith(base) else elsewhere.append(r.url))
        page.goto(f"{base}/login/")
        page.fill("#id_username", "mia")
        page.fill("#id_password", "correct-horse-battery")
        page.click("button[type=submit].btn-primary")

        # Home: today's posts of the manager's groups, and the open alerts.
        page.wait_for_selector('[data-card="calendar"]')
        due = page.locator('[data-card="calendar"] table[data-table="due-posts"] tr[data-status="planned"]')
        assert due.count() >= 1
        alerts_card = page.locator('[data-card="community-alerts"]')
        assert alerts_card.locator("li[data-alert]").count() >= 1
        assert groups["admin_group"] not in alerts_card.inner_text()  # the admin's groups are not theirs

        # The group list shows the manager's ten groups, not the admin's two.
        page.goto(f"{base}/communities/")
        rows = page.locator('table[data-table="groups"] tr[data-group]')
        assert rows.count() == 10
        assert groups["admin_group"] not in page.locator('table[data-table="groups"]').inner_text()
        page.click('tr[data-group="demo-wx-vip"] a')
        page.wait_for_selector('[data-role="group-name"]')
        assert "金卡会员俱乐部" in page.locator('[data-role="group-name"]').inner_text()

        # Its calendar: today's planned post, marked done; who and when show.
        page.click('[data-action="group-calendar"]')
        page.wait_for_selector('table[data-table="days"]')
        post = page.locator('tr.today .post[data-status="planned"]').first
        post_id = post.get_attribute("data-post")
        post.locator("summary").click()
        post.locator("textarea, input[name=posted_text]").first.fill("今日话题已发，大家踊跃参与")
        post.locator('form[action$="/done/"] button[type=submit]').click()
        done = page.locator(f'.post[data-post="{post_id}"][data-status="done"]')
        done.wait_for()
        assert "mia" in done.inner_text()
        stored = ContentPost.objects.get(pk=post_id)
        assert stored.status == PostStatus.DONE and stored.done_by.username == "mia"
        assert stored.done_at.astimezone(operator_timezone()).strftime("%Y-%m-%d %H:%M") in done.inner_text()

        # An alert from the home page, dismissed as a false positive with the reason.
        page.goto(f"{base}/")
        page.locator('[data-card="community-alerts"] li[data-alert] a').first.click()
        page.wait_for_selector('section[data-alert][data-status="open"]')
        alert_id = page.locator("section[data-alert]").get_attribute("data-alert")
        page.fill('form[data-role="dismiss"] input[name="reason"]', "顾客在引用退款政策，不是投诉")
        page.click('form[data-role="dismiss"] button[type=submit]')
        page.wait_for_selector('section[data-alert][data-status="dismissed"]')
        assert "顾客在引用退款政策" in page.locator("section[data-alert]").inner_text()
        alert = Alert.objects.get(pk=alert_id)
        assert alert.status == AlertStatus.DISMISSED and alert.handled_by.username == "mia"

        # An SOP template previewed for a member of the group, with its fields filled in.
        page.goto(f"{base}/communities/templates/{groups['faq']}/")
        page.locator('[data-role="preview"]').first.click()
        page.wait_for_selector('form[data-role="preview-form"]')
        page.fill('input[name="customer"]', groups["member"])
        page.select_option('select[name="group"]', str(groups["vip"]))
        page.fill('input[name="field_order_no"]', "SO-20261203-88")
        page.fill('input[name="field_refund_days"]', "3")
        page.click('form[data-role="preview-form"] button[type=submit]')
        text = page.locator('[data-role="preview-text"]').inner_text()
        assert groups["nickname"] in text and "SO-20261203-88" in text and "3 个工作日" in text
        assert elsewhere == []

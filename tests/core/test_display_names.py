"""Data keys (channels, event types, event properties) by their admin-editable names in
the operator's language; the 360 page's chips and names per role."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.template import Context, Template
from django.utils import timezone, translation

from core import selectors
from core.models import AuditEntry, DisplayName
from core.services import display_name_delete, display_name_save
from segments import services as segment_services
from segments.models import SegmentRun
from tests.users.factories import CustomerFactory, EventFactory, OrderFactory

pytestmark = pytest.mark.django_db
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture(autouse=True)
def _fresh_copy():
    """The tests here change names inside a transaction that is rolled back: no later
    test may see this process's copy of them."""
    selectors._local["names"] = None
    yield
    selectors._local["names"] = None


def _render(text: str, **context) -> str:
    return Template("{% load display %}" + text).render(Context(context))


def test_the_built_in_list_is_seeded_for_channels_and_event_types():
    seeded = set(DisplayName.objects.values_list("kind", "key"))
    for key in ("organic", "douyin", "wechat", "app_store", "referral", "xiaohongshu", "ads"):
        assert ("channel", key) in seeded
    for key in ("add_to_cart", "page_view", "checkin", "login", "share", "invite", "message"):
        assert ("event_type", key) in seeded


def test_names_follow_the_language_and_unknown_keys_show_as_themselves():
    with translation.override("zh-hans"):
        assert _render('{{ c|display:"channel" }}', c="douyin") == "抖音"
        assert _render('{{ t|display:"event_type" }}', t="add_to_cart") == "加入购物车"
        assert _render('{{ c|display:"channel" }}', c="tiktok-global") == "tiktok-global"
        assert _render('{{ c|display:"channel"|default:"—" }}', c="") == "—"
    with translation.override("en"):
        assert _render('{{ c|display:"channel" }}', c="organic") == "Organic"


def test_a_saved_name_is_audited_and_shown_at_once_in_every_process(make_user, django_capture_on_commit_callbacks):
    admin = make_user("admin", username="ada")
    assert selectors.display_name("channel", "kuaishou", language="zh-hans") == "kuaishou"
    with django_capture_on_commit_callbacks(execute=True):
        name = display_name_save(kind="channel", key="kuaishou", name_en="Kuaishou", name_zh_hans="快手", actor=admin)
    assert selectors.display_name("channel", "kuaishou", language="zh-hans") == "快手"
    entry = AuditEntry.objects.get(action="display_name.create")
    assert entry.actor == admin and entry.changes["name_zh_hans"] == [None, "快手"]

    # Another process holds its own copy: it sees the new version in the shared cache.
    selectors._local.update(names={("channel", "kuaishou"): DisplayName(name_zh_hans="stale")}, checked_at=0.0)
    with django_capture_on_commit_callbacks(execute=True):
        display_name_save(
            display_name=name, kind="channel", key="kuaishou", name_en="Kuaishou", name_zh_hans="快手短视频"
        )
    selectors._local.update(checked_at=0.0)
    assert selectors.display_name("channel", "kuaishou", language="zh-hans") == "快手短视频"
    change = AuditEntry.objects.get(action="display_name.change")
    assert change.changes == {"name_zh_hans": ["快手", "快手短视频"]}

    with django_capture_on_commit_callbacks(execute=True):
        display_name_delete(display_name=DisplayName.objects.get(key="kuaishou"), actor=admin)
    assert selectors.display_name("channel", "kuaishou", language="zh-hans") == "kuaishou"
    assert AuditEntry.objects.filter(action="display_name.delete").exists()


def test_the_version_lives_in_the_shared_cache():
    before = cache.get(selectors.VERSION_KEY)
    selectors.display_names_forget()
    assert cache.get(selectors.VERSION_KEY) != before


def test_admin_edits_display_names(client, make_user, django_capture_on_commit_callbacks):
    client.force_login(make_user("admin", username="ada"))
    page = client.get("/admin/core/displayname/", **ZH).content.decode()
    assert "显示名称" in page and "抖音" in page and "用户运营台管理后台" in page and "Django" not in page
    douyin = DisplayName.objects.get(kind="channel", key="douyin")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/admin/core/displayname/{douyin.pk}/change/",
            {"kind": "channel", "key": "douyin", "name_en": "Douyin", "name_zh_hans": "抖音短视频"},
            **ZH,
        )
    assert response.status_code == 302
    assert selectors.display_name("channel", "douyin", language="zh-hans") == "抖音短视频"
    assert AuditEntry.objects.filter(action="display_name.change", actor_label="ada").exists()
    clash = client.post(
        "/admin/core/displayname/add/",
        {"kind": "channel", "key": "douyin", "name_en": "Again", "name_zh_hans": "又一个"},
        **ZH,
    )
    assert clash.status_code == 200 and "此键已有显示名称" in clash.content.decode()


@pytest.fixture
def scored_customer(db):
    now = timezone.now()
    customer = CustomerFactory(
        external_id="zh-001", channel="douyin", signup_at=now - timedelta(days=400), paid_amount=Decimal("7407405")
    )
    for k in range(6):
        OrderFactory(customer=customer, amount=Decimal("1234567.5"), occurred_at=now - timedelta(days=3 + 10 * k))
    for i in range(5):
        CustomerFactory(external_id=f"zh-other-{i}", signup_at=now - timedelta(days=400))
    EventFactory(customer=customer, type="add_to_cart", properties={"sku": "SKU-00001", "qty": 2})
    EventFactory(customer=customer, type="page_view", properties={"page": "product", "note": "13912345678"})
    assert segment_services.recompute_sync().status == SegmentRun.Status.PUBLISHED
    return customer


@pytest.mark.parametrize("role", ["viewer", "operator", "community_manager", "admin"])
def test_the_360_page_shows_names_not_keys_and_links_only_pages_the_role_opens(
    client, make_user, scored_customer, role
):
    user = make_user(role, username=f"u-{role}")
    client.force_login(user)
    html = client.get("/customers/zh-001/", **ZH).content.decode()
    assert "抖音" in html and ">douyin<" not in html
    assert "加入购物车" in html and ">add_to_cart<" not in html
    assert "<dt>商品编码</dt><dd>SKU-00001</dd>" in html and "<dt>数量</dt><dd>2</dd>" in html
    assert "<dt>页面</dt><dd>商品详情</dd>" in html
    assert ("13912345678" in html) == user.has_perm("users.view_pii")  # masked per value
    assert "生命周期阶段: " in html and ">stage-" not in html  # chips by dimension and value, not slugs
    assert "7,407,405.00" in html  # thousands separators in Chinese too
    can_open = user.has_perm("segments.view_segment")
    assert ('href="/segments/stage-' in html) == can_open
    if not can_open:
        assert client.get("/segments/").status_code == 403  # why the chips are not links for this role

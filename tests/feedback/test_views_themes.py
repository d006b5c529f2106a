"""The themes pages: who may see and act (a viewer sees, cannot rename — 403), the
list with counts and trend, a theme's page, rename / confirm / dismiss / hand-off with
their errors shown and nothing written, the roadmap and its status, in both languages."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from core.models import AuditEntry
from feedback.models import RoadmapItem, Theme
from tests.feedback.factories import RoadmapItemFactory, ThemeFactory, TicketFactory

pytestmark = [pytest.mark.django_db]

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}


@pytest.fixture
def theme(db):
    theme = ThemeFactory(name="收不到验证码")
    now = timezone.now()
    for days in (0, 1, 8):
        TicketFactory(theme=theme, subject=f"验证码 {days}", created_at=now - timedelta(days=days))
    return theme


def login(client, make_user, role):
    user = make_user(role, username=f"{role}-themes")
    client.force_login(user)
    return user


def url(name, *args):
    return reverse(f"feedback_themes:{name}", args=args)


def test_anonymous_goes_to_login_and_a_user_without_the_permission_gets_403(client, make_user, theme):
    response = client.get(url("list"))
    assert response.status_code == 302 and "/login/" in response["Location"]
    client.force_login(make_user(None, username="no-role"))
    assert client.get(url("list")).status_code == 403
    assert client.get(url("detail", theme.pk)).status_code == 403
    assert client.get(url("roadmap")).status_code == 403


def test_the_list_shows_counts_and_the_weekly_trend(client, make_user, theme):
    ThemeFactory(name="dismissed one", status=Theme.Status.DISMISSED)
    login(client, make_user, "viewer")
    response = client.get(url("list"), **EN)
    assert response.status_code == 200
    html = response.content.decode()
    row = re.search(rf'<tr data-theme="{theme.pk}".*?</tr>', html, re.S).group(0)
    assert "收不到验证码" in row
    assert re.search(r"data-count>3<", row)
    trend = re.search(r'data-trend="([0-9,]+)"', row).group(1).split(",")
    assert len(trend) == 8 and sum(map(int, trend)) == 3
    assert "<polyline" in row
    assert "dismissed one" not in html  # the default list is suggested and confirmed
    assert "dismissed one" in client.get(url("list") + "?status=dismissed", **EN).content.decode()
    assert client.get(url("list") + "?status=nonsense").status_code == 200


def test_the_pages_speak_chinese(client, make_user, theme):
    login(client, make_user, "viewer")
    assert "反馈主题" in client.get(url("list"), **ZH).content.decode()
    detail = client.get(url("detail", theme.pk), **ZH).content.decode()
    assert "每周趋势" in detail and "待确认" in detail
    assert "产品路线图" in client.get(url("roadmap"), **ZH).content.decode()


def test_a_viewer_sees_a_theme_but_cannot_act(client, make_user, theme):
    login(client, make_user, "viewer")
    response = client.get(url("detail", theme.pk), **EN)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-ticket="' in html and 'data-form="rename"' not in html
    assert client.post(url("rename", theme.pk), {"name": "新名字"}).status_code == 403
    assert client.post(url("confirm", theme.pk)).status_code == 403
    assert client.post(url("dismiss", theme.pk)).status_code == 403
    assert client.post(url("to-roadmap", theme.pk), {"title": "x"}).status_code == 403
    theme.refresh_from_db()
    assert (theme.name, theme.status) == ("收不到验证码", Theme.Status.SUGGESTED)
    assert not AuditEntry.objects.exists()


def test_an_unknown_theme_is_404_and_actions_want_post(client, make_user, theme):
    login(client, make_user, "operator")
    assert client.get(url("detail", 999999)).status_code == 404
    assert client.post(url("rename", 999999), {"name": "x"}).status_code == 404
    assert client.get(url("rename", theme.pk)).status_code == 405


def test_an_operator_renames_a_theme(client, make_user, theme):
    login(client, make_user, "operator")
    response = client.post(url("rename", theme.pk), {"name": " 短信验证码收不到 "}, **EN)
    assert response.status_code == 302 and response["Location"] == url("detail", theme.pk)
    theme.refresh_from_db()
    assert theme.name == "短信验证码收不到"
    page = client.get(url("detail", theme.pk), **EN).content.decode()
    assert "Theme renamed to “短信验证码收不到”." in page


@pytest.mark.parametrize(("name", "error"), [("", "A theme needs a name."), ("   ", "A theme needs a name.")])
def test_an_empty_name_is_shown_as_an_error_and_nothing_changes(client, make_user, theme, name, error):
    login(client, make_user, "operator")
    response = client.post(url("rename", theme.pk), {"name": name}, **EN)
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'data-error="name">' + re.escape(error) + "<", html)
    theme.refresh_from_db()
    assert theme.name == "收不到验证码"
    assert not AuditEntry.objects.exists()


def test_a_too_long_name_is_refused(client, make_user, theme):
    login(client, make_user, "operator")
    response = client.post(url("rename", theme.pk), {"name": "长" * 121}, **EN)
    assert response.status_code == 200 and 'data-error="name"' in response.content.decode()
    theme.refresh_from_db()
    assert theme.name == "收不到验证码"


def test_the_hand_off_wants_a_confirmed_theme(client, make_user, theme):
    login(client, make_user, "operator")
    page = client.get(url("detail", theme.pk), **EN).content.decode()
    assert 'data-form="roadmap"' not in page and "Confirm the theme to hand it to the product roadmap." in page
    # Posted anyway (an old page, a crafted request): refused, shown, nothing written.
    response = client.post(url("to-roadmap", theme.pk), {"title": "短信通道"}, **EN)
    assert response.status_code == 200
    assert "Only a confirmed theme can go on the roadmap; confirm it first." in response.content.decode()
    assert not RoadmapItem.objects.exists()


def test_confirm_then_hand_off_then_set_the_roadmap_status(client, make_user, theme):
    login(client, make_user, "operator")
    assert client.post(url("confirm", theme.pk)).status_code == 302
    theme.refresh_from_db()
    assert theme.status == Theme.Status.CONFIRMED
    page = client.get(url("detail", theme.pk), **EN).content.decode()
    assert 'data-form="roadmap"' in page and 'value="收不到验证码"' in page  # the title starts as the name

    response = client.post(url("to-roadmap", theme.pk), {"title": ""}, **EN)
    assert response.status_code == 200
    assert re.search(r'data-error="title">A roadmap item needs a title\.<', response.content.decode())
    assert not RoadmapItem.objects.exists()

    response = client.post(url("to-roadmap", theme.pk), {"title": "短信验证码通道"}, **EN)
    assert response.status_code == 302
    item = RoadmapItem.objects.get()
    assert (item.theme_id, item.title, item.status) == (theme.pk, "短信验证码通道", "proposed")

    again = client.post(url("to-roadmap", theme.pk), {"title": "又一次"}, **EN)
    assert again.status_code == 200 and "This theme is already on the roadmap." in again.content.decode()
    assert RoadmapItem.objects.count() == 1

    roadmap = client.get(url("roadmap"), **EN).content.decode()
    assert re.search(rf'<tr data-item="{item.pk}" data-status="proposed">.*?短信验证码通道', roadmap, re.S)
    response = client.post(url("roadmap-status", item.pk), {"status": "planned"}, **EN)
    assert response.status_code == 302 and response["Location"] == url("roadmap")
    item.refresh_from_db()
    assert item.status == "planned"
    assert "短信验证码通道" in client.get(url("roadmap") + "?status=planned").content.decode()
    assert "短信验证码通道" not in client.get(url("roadmap") + "?status=shipped").content.decode()


def test_an_unknown_roadmap_status_is_shown_and_nothing_changes(client, make_user):
    item = RoadmapItemFactory(title="夜间模式")
    login(client, make_user, "operator")
    response = client.post(url("roadmap-status", item.pk), {"status": "done"}, **EN)
    assert response.status_code == 200
    assert re.search(r'data-error="status">Unknown roadmap status: done\.<', response.content.decode())
    item.refresh_from_db()
    assert item.status == "proposed"
    assert not AuditEntry.objects.exists()
    assert client.post(url("roadmap-status", 999999), {"status": "planned"}).status_code == 404


def test_a_theme_on_the_roadmap_cannot_be_dismissed_from_its_page(client, make_user):
    item = RoadmapItemFactory()
    login(client, make_user, "operator")
    page = client.get(url("detail", item.theme.pk), **EN).content.decode()
    assert 'data-action="dismiss"' not in page and 'data-role="roadmap-item"' in page
    response = client.post(url("dismiss", item.theme.pk), follow=True, **EN)
    assert "This theme is on the product roadmap; it cannot be dismissed." in response.content.decode()
    item.theme.refresh_from_db()
    assert item.theme.status == Theme.Status.CONFIRMED


def test_a_viewer_cannot_change_the_roadmap(client, make_user):
    item = RoadmapItemFactory()
    login(client, make_user, "viewer")
    page = client.get(url("roadmap"), **EN).content.decode()
    assert 'name="status"' not in page and 'data-status="proposed"' in page
    assert client.post(url("roadmap-status", item.pk), {"status": "planned"}).status_code == 403
    item.refresh_from_db()
    assert item.status == "proposed"

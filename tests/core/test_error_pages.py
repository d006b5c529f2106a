"""Operator error pages: the site's layout, the operator's language, a way back;
the 500 page renders without touching the session or the database."""

import pytest
from django.test import Client

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.core.error_pages_urls")]

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def _assert_site_page(response, status: int):
    assert response.status_code == status
    html = response.content.decode()
    assert f'data-error-page="{status}"' in html
    assert 'class="topbar"' in html and 'class="mainnav"' in html  # the site's layout and navigation
    assert 'href="/"' in html and "history.back()" in html  # a way back
    return html


@pytest.mark.parametrize(
    ("url", "status", "zh", "en"),
    [
        ("/test-errors/400", 400, "无法理解该请求", "The request could not be understood"),
        ("/test-errors/403", 403, "您无权打开此页面", "You do not have permission to open this page"),
        ("/customers/no-such-customer-anywhere/", 404, "页面不存在", "Page not found"),
        ("/no/such/page", 404, "页面不存在", "Page not found"),
    ],
)
def test_error_pages_have_the_layout_a_way_back_and_both_languages(make_user, url, status, zh, en):
    client = Client()
    client.force_login(make_user("admin", username="ada"))
    html = _assert_site_page(client.get(url, **ZH), status)
    assert zh in html and "返回看板" in html and en not in html
    assert 'lang="zh-hans"' in html
    html = _assert_site_page(client.get(url, **EN), status)
    assert en in html and "Back to the dashboard" in html
    assert 'lang="en"' in html


def test_a_role_refused_a_page_gets_the_styled_403(make_user):
    client = Client()
    client.force_login(make_user("community_manager", username="cora"))
    html = _assert_site_page(client.get("/segments/", **ZH), 403)
    assert "您无权打开此页面" in html
    assert "cora" in html  # the signed-in layout, not a bare page


@pytest.mark.parametrize("url", ["/test-errors/500", "/test-errors/500-db"])
def test_the_500_page_renders_in_both_languages_without_queries(url, django_assert_num_queries):
    client = Client(raise_request_exception=False)
    with django_assert_num_queries(1 if url.endswith("-db") else 0):  # only the failing query itself
        response = client.get(url, **ZH)
    html = _assert_site_page(response, 500)
    assert "服务器出错了" in html and "返回看板" in html
    html = _assert_site_page(client.get(url, **EN), 500)
    assert "Something went wrong on our side" in html

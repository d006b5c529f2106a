"""The dashboard page and the operator shell around it: access, numbers as
rendered, the inline chart, no asset from another site, both languages, and
the sign-in lockout."""

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse

from core.models import JobRun
from tests.dashboards.test_selectors import NOW, dataset  # noqa: F401  (fixture)
from tests.users.factories import CustomerFactory

ROLES = ["viewer", "operator", "community_manager", "admin"]


@pytest.fixture
def pinned_now(monkeypatch):
    monkeypatch.setattr("dashboards.views.timezone", SimpleNamespace(now=lambda: NOW))
    return NOW


def kpi_value(html: str, key: str) -> str:
    match = re.search(rf'data-kpi="{key}">.*?<p class="kpi-value">(.*?)</p>', html, re.S)
    assert match, f"no KPI card {key}"
    return re.sub(r"<[^>]+>", "", match.group(1)).split()[0]


def test_anonymous_is_redirected_to_login(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next=/"


@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_the_dashboard(client, make_user, role):
    client.force_login(make_user(role))
    response = client.get("/")
    assert response.status_code == 200
    assert "kpi-grid" in response.content.decode()


def test_customers_nav_is_shown_only_with_permission(client, make_user):
    client.force_login(make_user(None))
    assert reverse("users:search") not in client.get("/").content.decode()
    client.force_login(make_user("viewer"))
    assert reverse("users:search") in client.get("/").content.decode()


def test_dashboard_renders_the_known_numbers(client, make_user, dataset, pinned_now):  # noqa: F811
    JobRun.objects.create(
        job="segments_recompute",
        status="succeeded",
        started_at=NOW - timedelta(hours=2),
        finished_at=NOW - timedelta(hours=2) + timedelta(seconds=90),
    )
    JobRun.objects.create(job="campaigns_dispatch", status="running", started_at=NOW - timedelta(minutes=5))
    client.force_login(make_user("operator"))
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="en")
    html = response.content.decode()
    assert kpi_value(html, "customers_total") == "5"
    assert kpi_value(html, "customers_new_7d") == "2"
    assert kpi_value(html, "customers_new_30d") == "4"
    assert kpi_value(html, "paid_orders_30d") == "3"
    assert kpi_value(html, "revenue_30d") == "180.50"
    assert kpi_value(html, "average_order_value_30d") == "60.17"
    assert kpi_value(html, "repeat_purchase_rate") == "66.7%"
    assert kpi_value(html, "dau") == "1"
    assert kpi_value(html, "mau") == "3"
    assert kpi_value(html, "stickiness") == "33.3%"
    # by channel, largest first
    channels = re.findall(r'<td class="num">(\d+)</td>', html.split('data-table="channels"')[1].split("</table>")[0])
    assert channels == ["2", "1", "1"]
    # job runs with duration, the running one without
    jobs = html.split('data-table="jobs"')[1].split("</table>")[0]
    assert jobs.index("campaigns_dispatch") < jobs.index("segments_recompute")
    assert "90.0 s" in jobs
    assert "—" in jobs


def test_chart_is_inline_svg_with_one_bar_per_day(client, make_user, dataset, pinned_now):  # noqa: F811
    client.force_login(make_user("operator"))
    html = client.get("/").content.decode()
    svg = html.split('<svg class="chart"')[1].split("</svg>")[0]
    assert svg.count("<rect") == 30
    assert svg.count("<circle") == 30
    assert "<polyline" in svg
    # The chart is drawn by the server; the one script (the Segments card's refresh) is our own file.
    assert "<script" not in svg
    assert re.findall(r"<script[^>]*>(.*?)</script>", html, re.S) == [""]
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/js/dashboard.js" defer>']


def test_dashboard_on_empty_database_shows_dashes_not_errors(client, make_user, pinned_now):
    client.force_login(make_user("operator"))
    html = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert kpi_value(html, "average_order_value_30d") == "—"
    assert kpi_value(html, "stickiness") == "—"
    assert "No job has run yet." in html


# --- no asset or link from another site --------------------------------------------

EXTERNAL = re.compile(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


@pytest.mark.parametrize("path", ["/", "/customers/?q=c", "/customers/shell-1/", "/login/"])
def test_pages_load_nothing_from_another_site(client, make_user, path):
    CustomerFactory(external_id="shell-1")
    if path != "/login/":
        client.force_login(make_user("admin"))
    html = client.get(path).content.decode()
    assert 'rel="stylesheet"' in html or path == "/login/"
    assert EXTERNAL.findall(html) == []
    assert "@import" not in html
    assert "url(http" not in html


def test_stylesheet_loads_nothing_from_another_site():
    css = (settings.BASE_DIR / "static" / "css" / "ops.css").read_text()
    assert "http" not in css and "@import" not in css and "@font-face" not in css


# --- languages ------------------------------------------------------------------------


def test_chinese_is_the_default_language(client, make_user):
    client.force_login(make_user("operator"))
    html = client.get("/").content.decode()
    assert '<html lang="zh-hans">' in html
    assert "看板" in html  # "Dashboard"
    assert "复购率" in html  # "Repeat-purchase rate"


def test_english_by_accept_language(client, make_user):
    client.force_login(make_user("operator"))
    html = client.get("/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    assert '<html lang="en">' in html
    assert "Repeat-purchase rate" in html
    assert "复购率" not in html


def test_language_cookie_wins_and_set_language_switches(client, make_user):
    client.force_login(make_user("operator"))
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert "Repeat-purchase rate" in client.get("/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    response = client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    assert response.status_code == 302
    assert "复购率" in client.get("/").content.decode()


def test_login_page_is_translated(client, db):
    assert "登录" in client.get("/login/").content.decode()
    assert "Sign in" in client.get("/login/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


# --- sign in, sign out, lockout --------------------------------------------------------


def test_login_then_logout_by_post(client, make_user):
    make_user("operator", username="olivia")
    response = client.post("/login/", {"username": "olivia", "password": "correct-horse-battery"})
    assert response.status_code == 302 and response["Location"] == reverse("dashboards:home")
    assert client.get("/").status_code == 200
    assert client.post(reverse("logout")).status_code == 302
    assert client.get("/").status_code == 302


def test_login_locks_out_after_five_failures(client, make_user):
    make_user("operator", username="olivia")
    assert settings.AXES_FAILURE_LIMIT == 5
    for attempt in range(1, 5):
        response = client.post(
            "/login/", {"username": "olivia", "password": f"wrong-{attempt}"}, HTTP_ACCEPT_LANGUAGE="en"
        )
        assert response.status_code == 200, f"attempt {attempt} should just fail"
        assert "didn't match" in response.content.decode()
    fifth = client.post("/login/", {"username": "olivia", "password": "wrong-5"}, HTTP_ACCEPT_LANGUAGE="en")
    assert fifth.status_code == 429
    # Now even the right password is refused, with the lockout page.
    locked = client.post(
        "/login/", {"username": "olivia", "password": "correct-horse-battery"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert locked.status_code == 429
    assert "Account locked" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # Another user from the same address is not locked (username + IP).
    make_user("viewer", username="victor")
    other = client.post("/login/", {"username": "victor", "password": "correct-horse-battery"})
    assert other.status_code == 302
    assert get_user_model().objects.get(username="victor").last_login is not None

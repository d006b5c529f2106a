"""Every page of the ``campaigns`` namespace, walked from ``campaigns.urls`` as it is
when the tests run (a page added later is covered without editing this file), for
every role:

- an anonymous visitor is sent to the login page;
- a community manager (no campaigns permission) gets 403 on every page, by GET and,
  when the page only takes POST, by POST — and nothing changes;
- a viewer opens the pages that read (200) and gets 403 on every page that writes;
- operators and admins open every page; a form's empty POST is refused with a 400, an
  action is answered with a redirect — never 403, 404 or a 500;
- an unknown campaign is 404 for those who may see campaigns.

URL keyword arguments are filled by name (``campaign_id``); a pattern whose arguments
cannot be filled fails the first test, so no page drops out of the matrix unnoticed."""

import pytest
from django.conf import settings
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import URLPattern, URLResolver, reverse

from campaigns import urls as campaign_urls
from campaigns.models import Campaign
from campaigns.services import campaigns as campaign_services
from campaigns.services.campaigns import VariantSpec
from tests.users.factories import CustomerFactory

pytestmark = pytest.mark.django_db

# The pages that only read; every other page writes (a form, an action).
READ_PAGES = {"list", "detail"}


def _patterns(patterns) -> list[URLPattern]:
    out = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            out.extend(_patterns(entry.url_patterns))
        elif isinstance(entry, URLPattern):
            out.append(entry)
    return out


def _cases(fillers: dict) -> list[tuple[str, str]]:
    cases = []
    for pattern in _patterns(campaign_urls.urlpatterns):
        assert pattern.name, f"{pattern.pattern} has no name"
        names = list(pattern.pattern.converters)
        missing = [n for n in names if n not in fillers]
        assert not missing, f"campaigns:{pattern.name}: teach the matrix {missing}"
        cases.append((pattern.name, reverse(f"campaigns:{pattern.name}", kwargs={n: fillers[n] for n in names})))
    return cases


def _answer(client: Client, url: str):
    """GET, or POST (no data) for a page that only takes POST."""
    response = client.get(url)
    if response.status_code == 405:
        response = client.post(url, {})
    return response


@pytest.fixture
def campaign(db, approved_template, static_segment):
    segment = static_segment("matrix", [CustomerFactory(), CustomerFactory()])
    return campaign_services.campaign_create(
        data={"name": "Matrix", "channel": "push", "segments": [segment]}, variants=[VariantSpec("A", 100, "promo")]
    )


def _client(make_user, role: str) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(make_user(role, f"matrix-{role}"))
    return client


def test_the_matrix_walks_every_page(campaign):
    names = {name for name, _url in _cases({"campaign_id": campaign.pk})}
    assert {"list", "new", "detail", "edit", "launch", "pause", "cancel"} <= names
    assert names >= READ_PAGES


def test_an_anonymous_visitor_is_sent_to_the_login_page(campaign):
    login = resolve_url(settings.LOGIN_URL)
    wrong = []
    for name, url in _cases({"campaign_id": campaign.pk}):
        response = _answer(Client(), url)
        if response.status_code != 302 or not response["Location"].startswith(login):
            wrong.append(f"campaigns:{name} {url} → {response.status_code}")
    assert wrong == []


def test_a_community_manager_gets_403_everywhere_and_changes_nothing(campaign, make_user):
    client = _client(make_user, "community_manager")
    wrong = []
    for name, url in _cases({"campaign_id": campaign.pk}):
        for response in (client.get(url), client.post(url, {})):
            if response.status_code != 403:
                wrong.append(f"campaigns:{name} {url} {response.request['REQUEST_METHOD']} → {response.status_code}")
    assert wrong == []
    campaign.refresh_from_db()
    assert campaign.status == "draft" and Campaign.objects.count() == 1


def test_a_viewer_reads_and_may_not_write(campaign, make_user):
    client = _client(make_user, "viewer")
    wrong = []
    for name, url in _cases({"campaign_id": campaign.pk}):
        status = _answer(client, url).status_code
        if name in READ_PAGES:
            if status != 200:
                wrong.append(f"campaigns:{name} {url} → {status}, not 200")
        else:
            post = client.post(url, {}).status_code
            if status != 403 or post != 403:
                wrong.append(f"campaigns:{name} {url} → {status}/{post}, not 403")
    assert wrong == []
    campaign.refresh_from_db()
    assert campaign.status == "draft"


@pytest.mark.parametrize("role", ["operator", "admin"])
def test_operators_and_admins_reach_every_page(campaign, make_user, role):
    client = _client(make_user, role)
    wrong = []
    for name, url in _cases({"campaign_id": campaign.pk}):
        response = _answer(client, url)
        if response.status_code in (403, 404) or response.status_code >= 500:
            wrong.append(f"campaigns:{name} {url} → {response.status_code}")
        if name in ("new", "edit"):
            refused = client.post(url, {})
            if refused.status_code != 400:
                wrong.append(f"campaigns:{name} {url} empty POST → {refused.status_code}, not 400")
    assert wrong == []


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_an_unknown_campaign_is_404(campaign, make_user, role):
    client = _client(make_user, role)
    wrong = []
    for name, url in _cases({"campaign_id": campaign.pk + 1000}):
        if "campaign_id" not in url and str(campaign.pk + 1000) not in url:
            continue
        status = _answer(client, url).status_code
        # A viewer is refused the writing pages before the campaign is looked up.
        expected = 403 if role == "viewer" and name not in READ_PAGES else 404
        if status != expected:
            wrong.append(f"campaigns:{name} {url} → {status}, not {expected}")
    assert wrong == []

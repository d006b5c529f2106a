"""Every page of the ``communities`` namespace, walked from ``communities.urls`` as it
is when the tests run (pages added later are covered without editing this file):

- an anonymous visitor is sent to the login page;
- on a page of one group (its URL names the first manager's group or something in it),
  a second community manager gets 404 — not 403, not the page — by GET and, when the
  page only takes POST, by POST;
- on a page of no particular group, the second manager sees nothing of the first one's
  group (its name and code do not appear).

URL keyword arguments are filled by name from rows made in the first manager's group
(``FILLERS``). A pattern whose arguments cannot be filled is skipped, listed in the
warnings summary and counted: at most ``MAX_SKIPPED`` may be, so a page does not drop
out of the matrix unnoticed — teach ``FILLERS`` its argument instead."""

import warnings
from datetime import timedelta

import pytest
from django.conf import settings
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import URLPattern, URLResolver, reverse
from django.urls.exceptions import NoReverseMatch
from django.utils import timezone

from communities import urls as community_urls
from communities.models import (
    Activity,
    Alert,
    CommunityGroup,
    ContentClass,
    ContentPost,
    GroupMessage,
    Incident,
    KeywordRule,
    RiskAction,
    SopTemplate,
    SopTemplateVersion,
    TemplateKind,
)
from communities.services import groups as group_services
from tests.users.factories import CustomerFactory

pytestmark = pytest.mark.django_db

MAX_SKIPPED = 3
SECRET_NAME = "第一位管理员的秘密群"
SECRET_CODE = "first-managers-secret-group"

# URL arguments naming the group or a row that belongs to it: a second manager gets 404.
GROUP_SCOPED = {
    "group_id",
    "membership_id",
    "member_id",
    "post_id",
    "activity_id",
    "message_id",
    "alert_id",
    "incident_id",
    "action_id",
    "staff_id",
}


def _patterns(patterns, prefix: str = "") -> list[tuple[str | None, URLPattern]]:
    """``(name, pattern)`` of every page, through nested includes (names namespaced as reverse wants)."""
    out = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            nested = f"{prefix}{entry.namespace}:" if entry.namespace else prefix
            out.extend(_patterns(entry.url_patterns, nested))
        elif isinstance(entry, URLPattern):
            out.append((f"{prefix}{entry.name}" if entry.name else None, entry))
    return out


def _kwarg_names(pattern: URLPattern) -> list[str]:
    route = pattern.pattern
    if hasattr(route, "converters"):  # path()
        return list(route.converters)
    return list(route.regex.groupindex)  # re_path()


@pytest.fixture
def world(make_user):
    """The first manager's group with one row of each kind in it; the second manager."""
    first, second = make_user("community_manager", "mgr-one"), make_user("community_manager", "mgr-two")
    secret = CommunityGroup(code=SECRET_CODE, name=SECRET_NAME, owner=first)
    group = group_services.group_save(group=secret, actor=first)
    customer = CustomerFactory()
    membership = group_services.member_join(group=group, customer=customer)
    now = timezone.now()
    post = ContentPost.objects.create(
        group=group,
        due_on=now.date(),
        kind=TemplateKind.DAILY_TOPIC,
        content_class=ContentClass.VALUE,
        title="topic",
        planned_by=first,
    )
    activity = Activity.objects.create(group=group, code="run", title="run", starts_at=now + timedelta(days=1))
    message = GroupMessage.objects.create(group=group, external_id="m1", customer=customer, sent_at=now, text="退款")
    rule = KeywordRule.objects.create(name="refund", pattern="退款")
    incident = Incident.objects.create(group=group, opened_at=now, last_hit_at=now, severity=rule.severity)
    alert = Alert.objects.create(
        group=group,
        message=message,
        rule=rule,
        severity=rule.severity,
        matched="退款",
        raised_at=now,
        incident=incident,
    )
    action = RiskAction.objects.create(
        group=group, customer=customer, step="warn", requested_step="warn", reason="marketing", note="n", at=now
    )
    template = SopTemplate.objects.create(code="welcome", name="welcome", kind=TemplateKind.WELCOME)
    version = SopTemplateVersion.objects.create(template=template, number=1, body="hi", written_by=first)
    staff = group_services.staff_grant(group=group, user=make_user("group_admin", "helper"), actor=first, can_post=True)
    fillers = {
        "group_id": group.pk,
        "membership_id": membership.pk,
        "member_id": membership.pk,
        "customer_id": customer.pk,
        "external_id": customer.external_id,
        "post_id": post.pk,
        "activity_id": activity.pk,
        "message_id": message.pk,
        "alert_id": alert.pk,
        "incident_id": incident.pk,
        "action_id": action.pk,
        "staff_id": staff.pk,
        "rule_id": rule.pk,
        "template_id": template.pk,
        "version_id": version.pk,
        "number": version.number,
    }
    return {"first": first, "second": second, "group": group, "fillers": fillers}


def _cases(fillers: dict) -> tuple[list[tuple[str, str, bool]], list[str]]:
    """``(name, url, group_scoped)`` of each page that can be reversed, and the skipped ones."""
    cases, skipped = [], []
    for name, pattern in _patterns(community_urls.urlpatterns):
        if name is None:
            skipped.append(f"{pattern.pattern} (no name)")
            continue
        names = _kwarg_names(pattern)
        missing = [n for n in names if n not in fillers]
        if missing:
            skipped.append(f"communities:{name} (cannot fill {', '.join(missing)})")
            continue
        try:
            url = reverse(f"communities:{name}", kwargs={n: fillers[n] for n in names})
        except NoReverseMatch:
            skipped.append(f"communities:{name} (the filled values do not match its converters)")
            continue
        cases.append((name, url, bool(GROUP_SCOPED & set(names))))
    return cases, skipped


def _answer(client: Client, url: str):
    """GET, or POST (no data) for a page that only takes POST."""
    response = client.get(url)
    if response.status_code == 405:
        response = client.post(url, {})
    return response


def test_the_matrix_walks_the_pages_there_are(world):
    cases, skipped = _cases(world["fillers"])
    assert cases, "communities.urls has no page at all"
    assert any(scoped for _n, _u, scoped in cases), "no page of one group in communities.urls"
    assert len(skipped) <= MAX_SKIPPED, f"too many pages left out of the matrix: {skipped}"
    if skipped:
        warnings.warn(f"{len(skipped)} page(s) left out of the matrix: {'; '.join(skipped)}", stacklevel=1)
    assert {"group", "group-risk", "risk-act", "group-calendar", "group-health", "template"} <= {
        name for name, _u, _s in cases
    }


def test_an_anonymous_visitor_is_sent_to_the_login_page(world):
    cases, _skipped = _cases(world["fillers"])
    login = resolve_url(settings.LOGIN_URL)
    wrong = []
    for name, url, _scoped in cases:
        response = _answer(Client(), url)
        if response.status_code != 302 or not response["Location"].startswith(login):
            wrong.append(f"communities:{name} {url} → {response.status_code}")
    assert wrong == []


def test_a_second_manager_sees_nothing_of_the_first_ones_group(world):
    cases, _skipped = _cases(world["fillers"])
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(world["second"])
    wrong = []
    for name, url, scoped in cases:
        response = _answer(client, url)
        if scoped:
            if response.status_code != 404:
                wrong.append(f"communities:{name} {url} → {response.status_code}, not 404")
            continue
        body = response.content.decode(errors="replace") if response.status_code == 200 else ""
        if SECRET_NAME in body or SECRET_CODE in body:
            wrong.append(f"communities:{name} {url} shows the first manager's group")
    assert wrong == []


def test_the_first_manager_reaches_the_group_pages(world):
    """The 404s above are the second manager's, not everyone's: the owner gets each
    group page (a form's empty POST may be refused, but not as 404/403)."""
    cases, _skipped = _cases(world["fillers"])
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(world["first"])
    wrong = []
    for name, url, scoped in cases:
        if not scoped:
            continue
        status = _answer(client, url).status_code
        if status in (403, 404) or status >= 500:
            wrong.append(f"communities:{name} {url} → {status}")
    assert wrong == []

"""The communities section's navigation: the areas the role may open, and on a page of
one group that group's tabs — never for a group the user may not see (the 404 page of
another manager's group names nothing of it)."""

import pytest
from django.test import Client

from communities.models import CommunityGroup
from communities.services import groups as group_services

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


@pytest.fixture
def group(make_user):
    owner = make_user("community_manager", "mgr-one")
    return group_services.group_save(group=CommunityGroup(code="runners", name="跑步群", owner=owner), actor=owner)


def test_a_group_page_shows_the_areas_and_the_groups_tabs(group):
    html = _client(group.owner).get(f"/communities/groups/{group.pk}/health/").content.decode()
    areas = html[html.index('data-nav="communities"') :]
    for url in ["/communities/", "/communities/calendar/", "/communities/health/", "/communities/alerts/"]:
        assert f'href="{url}"' in areas
    tabs = html[html.index('data-nav="group"') :]
    assert "跑步群" in tabs
    assert f'href="/communities/groups/{group.pk}/calendar/"' in tabs
    assert f'href="/communities/groups/{group.pk}/risk/"' in tabs
    assert f'href="/communities/groups/{group.pk}/health/" class="active" aria-current="page"' in tabs


def test_another_managers_group_page_has_no_tabs_and_no_name(group, make_user):
    response = _client(make_user("community_manager", "mgr-two")).get(f"/communities/groups/{group.pk}/health/")
    html = response.content.decode()
    assert response.status_code == 404
    assert 'data-nav="group"' not in html and "跑步群" not in html


def test_the_areas_follow_the_permissions(group, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("groups-only", password="x")
    user.user_permissions.add(Permission.objects.get(codename="view_communitygroup"))
    html = _client(user).get("/communities/").content.decode()
    start = html.index('data-nav="communities"')
    areas = html[start : html.index("</nav>", start)]
    assert 'href="/communities/"' in areas
    for hidden in ["/communities/calendar/", "/communities/health/", "/communities/alerts/", "/communities/templates/"]:
        assert f'href="{hidden}"' not in areas
    assert 'data-nav="group"' not in _client(group.owner).get("/communities/").content.decode()

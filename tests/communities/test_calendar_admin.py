"""The admin shows posts and health rows read-only, and a staff manager only those of
the groups they see."""

from datetime import date

import pytest
from django.test import Client

from communities.models import CommunityGroup, ContentClass, ContentPost, GroupHealthDay, TemplateKind
from communities.services import groups as group_services

pytestmark = pytest.mark.django_db


def _staff_client(make_user, username):
    user = make_user("community_manager", username)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return user, client


def test_posts_and_health_rows_are_read_only_and_only_of_visible_groups(make_user):
    owner, owner_client = _staff_client(make_user, "mgr-one")
    _second, second_client = _staff_client(make_user, "mgr-two")
    group = group_services.group_save(group=CommunityGroup(code="runners", name="跑步群", owner=owner), actor=owner)
    post = ContentPost.objects.create(
        group=group,
        due_on=date(2026, 12, 3),
        kind=TemplateKind.DAILY_TOPIC,
        content_class=ContentClass.VALUE,
        title="晨跑",
    )
    day = GroupHealthDay.objects.create(group=group, day=date(2026, 12, 2), members=3, messages=9)
    for model, row in (("contentpost", post), ("grouphealthday", day)):
        mine = owner_client.get(f"/admin/communities/{model}/")
        assert mine.status_code == 200 and list(mine.context["cl"].result_list) == [row], model
        theirs = second_client.get(f"/admin/communities/{model}/")
        assert theirs.status_code == 200 and list(theirs.context["cl"].result_list) == [], model
        assert owner_client.get(f"/admin/communities/{model}/add/").status_code == 403
        change = owner_client.post(f"/admin/communities/{model}/{row.pk}/change/", {"title": "改了"})
        assert change.status_code == 403
    post.refresh_from_db()
    assert post.title == "晨跑"

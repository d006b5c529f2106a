"""The groups pages: the list and a group for those who may see it, creating and
editing for those who may manage it, members and staff through the services — and for
every page a second community manager who sees nothing of the first one's groups (404),
a group admin without ``can_manage`` who gets 403 on writes, and a read-only viewer."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from communities import access
from communities.models import CommunityGroup, GroupStaff, MemberRole, Membership
from communities.services import groups as group_services
from core.models import AuditEntry
from tests.users.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


@pytest.fixture
def first(make_user):
    return make_user("community_manager", "mgr-one")


@pytest.fixture
def second(make_user):
    return make_user("community_manager", "mgr-two")


@pytest.fixture
def group(first):
    return group_services.group_save(
        group=CommunityGroup(code="runners", name="跑步群", owner=first, tags=["跑步"], platform_group_id="wx-1"),
        actor=first,
    )


@pytest.fixture
def member(group):
    customer = CustomerFactory(external_id="m-1")
    group_services.member_join(group=group, customer=customer, role=MemberRole.KOC, platform_member_id="wxid-1")
    return Membership.objects.get(group=group, customer=customer)


def _last_message(response) -> str:
    return str(list(response.context["messages"])[-1])


def _pages(group, member, staff=None):
    """Every page of a group: (method, url)."""
    pk = group.pk
    pages = [
        ("get", f"/communities/groups/{pk}/"),
        ("get", f"/communities/groups/{pk}/edit"),
        ("post", f"/communities/groups/{pk}/edit"),
        ("post", f"/communities/groups/{pk}/members/add"),
        ("post", f"/communities/groups/{pk}/members/{member.pk}/leave"),
        ("post", f"/communities/groups/{pk}/members/{member.pk}/role"),
        ("post", f"/communities/groups/{pk}/staff/grant"),
    ]
    if staff is not None:
        pages.append(("post", f"/communities/groups/{pk}/staff/{staff.pk}/revoke"))
    return pages


def test_the_list_shows_only_the_visible_groups_with_member_counts(first, second, group, member):
    group_services.group_save(group=CommunityGroup(code="swim", name="游泳群", owner=second), actor=second)
    page = _client(first).get("/communities/")
    assert page.status_code == 200
    assert [g.code for g in page.context["groups"]] == ["runners"]
    assert page.context["groups"][0].member_count == 1
    assert b'data-group="runners"' in page.content and b"swim" not in page.content
    assert b'href="/communities/"' in page.content  # the nav's Communities link
    other = _client(second).get("/communities/")
    assert [g.code for g in other.context["groups"]] == ["swim"]
    assert "跑步群" not in other.content.decode()


def test_the_list_filters_by_platform_status_and_tag(make_user, first, group):
    group_services.group_save(
        group=CommunityGroup(
            code="qq-fans", name="QQ fans", owner=first, platform="qq", status="planned", tags=["粉丝"]
        ),
        actor=first,
    )
    client = _client(make_user("viewer", "watcher"))
    codes = lambda **q: [g.code for g in client.get("/communities/", q).context["groups"]]  # noqa: E731
    assert codes() == ["qq-fans", "runners"]
    assert codes(platform="qq") == ["qq-fans"]
    assert codes(status="active") == ["runners"]
    assert codes(tag="跑步") == ["runners"]
    assert codes(tag="粉丝", platform="wechat") == []


def test_a_second_manager_gets_404_on_every_page_of_the_first_ones_group(first, second, group, member, make_user):
    helper = make_user("group_admin", "helper")
    staff = group_services.staff_grant(group=group, user=helper, actor=first, can_post=True)
    client = _client(second)
    for method, url in _pages(group, member, staff):
        response = getattr(client, method)(url, {"role": "admin", "customer": "m-1", "username": "mgr-two"})
        assert response.status_code == 404, (method, url)
        assert "跑步群" not in response.content.decode(), url
    assert Membership.objects.get(pk=member.pk).role == MemberRole.KOC
    assert Membership.objects.get(pk=member.pk).left_at is None
    assert GroupStaff.objects.filter(group=group).count() == 1


def test_a_group_admin_without_can_manage_reads_the_group_but_gets_403_on_writes(first, group, member, make_user):
    helper = make_user("group_admin", "helper")
    staff = group_services.staff_grant(group=group, user=helper, actor=first, can_post=True, can_handle_risk=True)
    client = _client(helper)
    page = client.get(f"/communities/groups/{group.pk}/")
    assert page.status_code == 200 and page.context["can_manage"] is False
    assert b'data-action="group-edit"' not in page.content and b'data-role="member-add"' not in page.content
    for method, url in _pages(group, member, staff)[1:]:
        response = getattr(client, method)(url, {"role": "admin", "customer": "m-1", "username": "helper"})
        assert response.status_code == 403, (method, url)
    assert client.get("/communities/groups/new").status_code == 403
    assert Membership.objects.get(pk=member.pk).role == MemberRole.KOC
    assert GroupStaff.objects.get(pk=staff.pk).can_manage is False


def test_a_viewer_sees_every_group_read_only(make_user, group, member):
    viewer = make_user("viewer", "watcher")
    client = _client(viewer)
    page = client.get(f"/communities/groups/{group.pk}/")
    assert page.status_code == 200
    assert page.context["can_manage"] is False and page.context["add_form"] is None
    assert b'data-member="m-1"' in page.content
    assert client.get(f"/communities/groups/{group.pk}/edit").status_code == 403
    assert client.post(f"/communities/groups/{group.pk}/members/{member.pk}/leave").status_code == 403
    assert client.get("/communities/groups/new").status_code == 403
    assert Membership.objects.get(pk=member.pk).left_at is None


def test_the_detail_shows_members_spans_history_invites_and_staff(first, group, make_user):
    inviter = CustomerFactory(external_id="inv-1")
    customer = CustomerFactory(external_id="m-2")
    start = timezone.now() - timedelta(days=9)
    group_services.member_join(group=group, customer=customer, joined_at=start)
    group_services.member_leave(group=group, customer=customer, left_at=start + timedelta(days=1), reason="busy")
    group_services.member_join(group=group, customer=customer, joined_at=start + timedelta(days=3), invited_by=inviter)
    helper = make_user("group_admin", "helper")
    group_services.staff_grant(group=group, user=helper, actor=first, can_post=True, can_handle_alerts=True)
    page = _client(first).get(f"/communities/groups/{group.pk}/")
    assert [m.customer.external_id for m in page.context["members"]] == ["m-2"]
    assert page.context["members"][0].invited_by == inviter
    history = page.context["history"]
    assert len(history) == 2 and history[1].left_reason == "busy" and history[0].left_at is None
    html = page.content.decode()
    assert 'data-staff="helper"' in html and 'data-right="handle_alerts"' in html and 'data-right="manage"' not in html


def test_a_manager_creates_and_edits_a_group_and_owns_it(first, second):
    client = _client(first)
    response = client.post(
        "/communities/groups/new",
        {
            "code": "yoga",
            "name": "瑜伽群",
            "platform": "wechat",
            "tags": "瑜伽，运动",
            "capacity": "200",
            "status": "active",
        },
    )
    assert response.status_code == 302
    group = CommunityGroup.objects.get(code="yoga")
    assert group.owner == first and group.tags == ["瑜伽", "运动"]
    response = client.post(
        f"/communities/groups/{group.pk}/edit",
        {
            "code": "yoga",
            "name": "瑜伽二群",
            "platform": "qq",
            "tags": "",
            "capacity": "300",
            "status": "full",
            "owner": str(first.pk),
        },
    )
    assert response.status_code == 302
    group.refresh_from_db()
    assert (group.name, group.platform, group.capacity, group.status, group.tags) == ("瑜伽二群", "qq", 300, "full", [])
    assert AuditEntry.objects.filter(action="community_group.update", object_id=str(group.pk)).exists()
    assert "owner" not in client.get("/communities/groups/new").context["form"].fields


def test_bad_group_input_is_shown_on_the_form_and_writes_nothing(first, group):
    client = _client(first)
    dup = client.post(
        "/communities/groups/new",
        {
            "code": "other",
            "name": "x",
            "platform": "wechat",
            "platform_group_id": "wx-1",
            "capacity": "5",
            "status": "active",
        },
    )
    assert dup.status_code == 200 and dup.context["form"].errors
    negative = client.post(
        "/communities/groups/new",
        {"code": "neg", "name": "x", "platform": "wechat", "capacity": "-1", "status": "active"},
    )
    assert negative.status_code == 200 and "capacity" in negative.context["form"].errors
    assert list(CommunityGroup.objects.values_list("code", flat=True)) == ["runners"]
    edit = client.post(
        f"/communities/groups/{group.pk}/edit",
        {
            "code": "runners",
            "name": "renamed",
            "platform": "wechat",
            "capacity": "-5",
            "status": "active",
            "owner": first.pk,
        },
    )
    assert edit.status_code == 200 and "capacity" in edit.context["form"].errors
    assert CommunityGroup.objects.get(pk=group.pk).name == "跑步群"


def test_the_service_refuses_a_duplicate_platform_id_and_a_negative_capacity(first, group):
    from core.errors import ApplicationError

    with pytest.raises(ApplicationError) as exc:
        group_services.group_save(
            group=CommunityGroup(code="dup", name="d", owner=first, platform_group_id="wx-1"), actor=first
        )
    assert exc.value.status_code == 400
    with pytest.raises(ApplicationError) as exc:
        group_services.group_save(group=CommunityGroup(code="neg", name="n", owner=first, capacity=-1), actor=first)
    assert "capacity" in exc.value.details
    assert CommunityGroup.objects.count() == 1


def test_members_join_change_role_and_leave_from_the_page(first, group):
    CustomerFactory(external_id="c-9")
    CustomerFactory(external_id="inv-9")
    client = _client(first)
    url = f"/communities/groups/{group.pk}/"
    response = client.post(url + "members/add", {"customer": "c-9", "role": "member", "invited_by": "inv-9"})
    assert response.status_code == 302
    span = Membership.objects.get(group=group, customer__external_id="c-9")
    assert span.invited_by.external_id == "inv-9" and span.left_at is None
    twice = client.post(url + "members/add", {"customer": "c-9", "role": "member"}, follow=True)
    assert "already in" in _last_message(twice)
    assert Membership.objects.filter(group=group, customer__external_id="c-9").count() == 1
    unknown = client.post(url + "members/add", {"customer": "nobody", "role": "member"}, follow=True)
    assert "Unknown customer nobody" in _last_message(unknown)
    bad_role = client.post(url + "members/add", {"customer": "inv-9", "role": "owner"}, follow=True)
    assert list(bad_role.context["messages"])
    assert not Membership.objects.filter(customer__external_id__in=["nobody", "inv-9"]).exists()
    assert client.post(url + f"members/{span.pk}/role", {"role": "koc"}).status_code == 302
    assert Membership.objects.get(pk=span.pk).role == "koc"
    assert client.post(url + f"members/{span.pk}/leave", {"reason": "moved"}).status_code == 302
    span.refresh_from_db()
    assert span.left_at is not None and span.left_reason == "moved"
    again = client.post(url + f"members/{span.pk}/leave", {"reason": "again"}, follow=True)
    assert "is not in" in _last_message(again)


def test_rights_are_granted_to_a_core_member_and_taken_back(first, group, member, make_user):
    helper = make_user("group_admin", "helper")
    client = _client(first)
    url = f"/communities/groups/{group.pk}/staff/"
    response = client.post(
        url + "grant", {"username": "helper", "member": "m-1", "can_post": "on", "can_handle_risk": "on"}
    )
    assert response.status_code == 302
    staff = GroupStaff.objects.get(group=group, user=helper)
    assert (staff.can_manage, staff.can_post, staff.can_handle_risk, staff.can_handle_alerts) == (
        False,
        True,
        True,
        False,
    )
    assert staff.membership == member and staff.granted_by == first
    assert access.rights_of(helper, group) == frozenset({access.POST, access.HANDLE_RISK})
    nobody = make_user(None, "no-role")
    refused = client.post(url + "grant", {"username": "no-role", "can_post": "on"}, follow=True)
    assert "no role" in _last_message(refused)
    assert not GroupStaff.objects.filter(user=nobody).exists()
    not_member = client.post(url + "grant", {"username": "helper", "member": "stranger"}, follow=True)
    assert "not a member" in _last_message(not_member)
    assert client.post(url + f"{staff.pk}/revoke").status_code == 302
    assert not GroupStaff.objects.filter(pk=staff.pk).exists()
    assert access.rights_of(helper, group) == frozenset()
    assert AuditEntry.objects.filter(action="group_staff.revoke").count() == 1


def test_a_manager_given_the_group_with_can_manage_edits_it_but_may_not_hand_it_over(first, second, group):
    group_services.staff_grant(group=group, user=second, actor=first, can_manage=True)
    client = _client(second)
    form = client.get(f"/communities/groups/{group.pk}/edit")
    assert form.status_code == 200 and "owner" not in form.context["form"].fields
    response = client.post(
        f"/communities/groups/{group.pk}/edit",
        {"code": "runners", "name": "新名字", "platform": "wechat", "capacity": "10", "status": "active"},
    )
    assert response.status_code == 302
    assert CommunityGroup.objects.get(pk=group.pk).owner == first
    assert CommunityGroup.objects.get(pk=group.pk).name == "新名字"


def test_a_join_in_the_future_is_refused_and_writes_nothing(first, group):
    CustomerFactory(external_id="c-7")
    client = _client(first)
    later = (timezone.now() + timedelta(days=2)).strftime("%Y-%m-%d %H:%M")
    response = client.post(
        f"/communities/groups/{group.pk}/members/add",
        {"customer": "c-7", "role": "member", "joined_at": later},
        follow=True,
    )
    assert "in the future" in _last_message(response)
    assert not Membership.objects.filter(customer__external_id="c-7").exists()

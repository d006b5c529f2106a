"""Object-level access to community groups and the membership spans (the foundation
of the communities app; pages and endpoints are built on ``communities.access``)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from communities import access
from communities.models import CommunityGroup, GroupStaff, MemberRole, Membership
from communities.services import groups as group_services
from core.errors import ApplicationError, Conflict, NotFound
from core.models import AuditEntry
from tests.users.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def managers(make_user):
    return make_user("community_manager", "mgr-one"), make_user("community_manager", "mgr-two")


@pytest.fixture
def group(managers):
    return group_services.group_save(
        group=CommunityGroup(code="runners", name="跑步群", owner=managers[0], tags=["跑步", " 跑步 ", "运动"]),
        actor=managers[0],
    )


def test_a_second_manager_sees_nothing_of_the_first_ones_groups(managers, group):
    first, second = managers
    assert list(access.groups_visible(first)) == [group]
    assert list(access.groups_visible(second)) == []
    with pytest.raises(NotFound) as exc:
        access.group_get(second, group.pk)
    assert exc.value.status_code == 404
    assert access.rights_of(second, group) == frozenset()


def test_the_owner_holds_every_right_and_admins_manage_every_group(managers, group, make_user):
    assert access.rights_of(managers[0], group) == frozenset(access.RIGHTS)
    admin = make_user("admin", "boss")
    assert access.group_get(admin, group.pk, right=access.MANAGE) == group


def test_operators_see_every_group_but_may_not_manage_it(make_user, group):
    operator = make_user("operator", "op")
    assert list(access.groups_visible(operator)) == [group]
    with pytest.raises(ApplicationError) as exc:
        access.group_get(operator, group.pk, right=access.MANAGE)
    assert exc.value.status_code == 403


def test_a_group_admin_holds_only_the_rights_ticked(managers, group, make_user):
    helper = make_user("group_admin", "core-member")
    assert list(access.groups_visible(helper)) == []
    group_services.staff_grant(group=group, user=helper, actor=managers[0], can_post=True, can_handle_risk=True)
    assert list(access.groups_visible(helper)) == [group]
    assert access.rights_of(helper, group) == frozenset({access.POST, access.HANDLE_RISK})
    with pytest.raises(ApplicationError) as exc:
        group_services.staff_grant(group=group, user=helper, actor=helper, can_manage=True)
    assert exc.value.status_code == 403
    assert GroupStaff.objects.get(user=helper).can_manage is False
    assert not helper.has_perm("communities.change_soptemplate")
    assert not helper.has_perm("communities.add_soptemplateversion")


def test_a_manager_given_a_group_manages_it_and_the_second_may_not_grant_on_it(managers, group):
    first, second = managers
    with pytest.raises(NotFound):
        access.group_get(second, group.pk, right=access.MANAGE)
    with pytest.raises(ApplicationError):
        group_services.staff_grant(group=group, user=second, actor=second, can_manage=True)
    assert not GroupStaff.objects.filter(user=second).exists()
    group_services.staff_grant(group=group, user=second, actor=first, can_manage=True)
    assert access.rights_of(second, group) == frozenset(access.RIGHTS)


def test_managers_write_templates_but_only_admins_approve_and_edit_rules(managers, make_user):
    manager = managers[0]
    assert manager.has_perm("communities.add_soptemplateversion")
    assert not manager.has_perm("communities.approve_soptemplate")
    assert not manager.has_perm("communities.change_keywordrule")
    assert not manager.has_perm("communities.view_all_groups")
    admin = make_user("admin", "boss")
    assert admin.has_perm("communities.approve_soptemplate")
    assert admin.has_perm("communities.change_keywordrule")


def test_group_save_cleans_tags_refuses_bad_ones_and_audits(managers, group):
    assert group.tags == ["跑步", "运动"]
    entry = AuditEntry.objects.get(action="community_group.create")
    assert entry.changes["code"] == [None, "runners"]
    group.tags = "not-a-list"
    with pytest.raises(ApplicationError) as exc:
        group_services.group_save(group=group, actor=managers[0])
    assert "tags" in exc.value.details
    assert CommunityGroup.objects.get(pk=group.pk).tags == ["跑步", "运动"]


def test_another_manager_may_not_update_the_group(managers, group):
    group.name = "hijacked"
    with pytest.raises(NotFound):
        group_services.group_save(group=group, actor=managers[1])
    assert CommunityGroup.objects.get(pk=group.pk).name == "跑步群"


def test_leaving_and_rejoining_makes_two_spans(group):
    customer = CustomerFactory()
    start = timezone.now() - timedelta(days=10)
    group_services.member_join(group=group, customer=customer, joined_at=start, platform_member_id="wx1")
    with pytest.raises(Conflict):
        group_services.member_join(group=group, customer=customer)
    group_services.member_leave(group=group, customer=customer, left_at=start + timedelta(days=2), reason="busy")
    group_services.member_join(group=group, customer=customer, joined_at=start + timedelta(days=5))
    spans = list(Membership.objects.filter(group=group, customer=customer).order_by("joined_at"))
    assert len(spans) == 2
    assert spans[0].left_at == start + timedelta(days=2) and spans[0].left_reason == "busy"
    assert spans[1].left_at is None
    assert AuditEntry.objects.filter(action__startswith="membership.").count() == 3


def test_bad_membership_input_is_refused_and_writes_nothing(group, managers):
    customer = CustomerFactory()
    with pytest.raises(ApplicationError) as exc:
        group_services.member_join(group=group, customer=customer, role="owner")
    assert exc.value.code == "invalid"
    with pytest.raises(ApplicationError) as exc:
        group_services.member_join(group=group, customer=customer, invited_by=customer)
    assert exc.value.details == {"invited_by": ["self"]}
    with pytest.raises(ApplicationError) as exc:
        group_services.member_leave(group=group, customer=customer)
    assert exc.value.code == "not_member"
    joined = timezone.now()
    group_services.member_join(group=group, customer=customer, joined_at=joined)
    with pytest.raises(ApplicationError) as exc:
        group_services.member_leave(group=group, customer=customer, left_at=joined - timedelta(hours=1))
    assert exc.value.details == {"left_at": ["before joined_at"]}
    assert Membership.objects.get(group=group, customer=customer).left_at is None
    with pytest.raises(NotFound):
        group_services.member_role_set(group=group, customer=customer, role=MemberRole.KOC, actor=managers[1])
    assert Membership.objects.get(group=group, customer=customer).role == MemberRole.MEMBER
    group_services.member_role_set(group=group, customer=customer, role=MemberRole.KOC, actor=managers[0])
    assert Membership.objects.get(group=group, customer=customer).role == MemberRole.KOC

"""Who may see and do what in which group (object-level permissions).

- Admins (``communities.manage_all_groups``) see and manage every group.
- Operators and viewers (``communities.view_all_groups``) see every group, read-only.
- A community manager sees the groups they own and those they were given
  (``GroupStaff``); on those they hold the rights given (``can_manage`` is all of them;
  owning a group is too).
- A group admin (a core member with an operator account, 分级管理) is a ``GroupStaff``
  row with the rights ticked — e.g. post SOP content and handle risk members.

Editing templates and keyword rules is never a group right: that is the model
permission of the admins (and, for writing template versions, the managers).

A group the user may not see is answered as not found (404), never as forbidden: a
second manager learns nothing of the first one's groups, not even that they exist."""

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from core.errors import ApplicationError, NotFound

from .models import CommunityGroup, GroupStaff

MANAGE = "manage"
POST = "post"
HANDLE_RISK = "handle_risk"
HANDLE_ALERTS = "handle_alerts"
RIGHTS = (MANAGE, POST, HANDLE_RISK, HANDLE_ALERTS)
_STAFF_FLAGS = {
    MANAGE: "can_manage",
    POST: "can_post",
    HANDLE_RISK: "can_handle_risk",
    HANDLE_ALERTS: "can_handle_alerts",
}


def sees_all(user) -> bool:
    return (
        user.is_superuser
        or user.has_perm("communities.manage_all_groups")
        or user.has_perm("communities.view_all_groups")
    )


def manages_all(user) -> bool:
    return user.is_superuser or user.has_perm("communities.manage_all_groups")


def group_visible_q(user) -> Q | None:
    """None when the user sees every group; otherwise the groups they may see."""
    if not user.is_authenticated or not user.is_active:
        return Q(pk__in=[])
    if sees_all(user):
        return None
    return Q(owner=user) | Q(pk__in=GroupStaff.objects.filter(user=user).values("group_id"))


def groups_visible(user) -> QuerySet[CommunityGroup]:
    if not user.is_authenticated or not user.has_perm("communities.view_communitygroup"):
        return CommunityGroup.objects.none()
    q = group_visible_q(user)
    return CommunityGroup.objects.all() if q is None else CommunityGroup.objects.filter(q)


def rights_of(user, group: CommunityGroup) -> frozenset[str]:
    """The rights the user holds on the group (empty when they may only look)."""
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    if manages_all(user) or group.owner_id == user.pk:
        return frozenset(RIGHTS)
    staff = GroupStaff.objects.filter(group=group, user=user).first()
    if staff is None:
        return frozenset()
    if staff.can_manage:
        return frozenset(RIGHTS)
    return frozenset(right for right, flag in _STAFF_FLAGS.items() if getattr(staff, flag))


def group_get(user, group_id, *, right: str | None = None) -> CommunityGroup:
    """The group, if the user may see it (404 otherwise) and holds ``right`` on it (403)."""
    try:
        group = groups_visible(user).get(pk=int(group_id))
    except (CommunityGroup.DoesNotExist, TypeError, ValueError):
        raise NotFound(_("No community group %(id)s.") % {"id": group_id}, code="unknown_group") from None
    if right is not None:
        require(user, group, right)
    return group


def require(user, group: CommunityGroup, right: str) -> None:
    """Refuses unless the user holds ``right`` on the group: 404 when they may not even
    see it (nothing leaks), 403 when they see it without the right."""
    if right in rights_of(user, group):
        return
    if not groups_visible(user).filter(pk=group.pk).exists():
        raise NotFound(_("No community group %(id)s.") % {"id": group.pk}, code="unknown_group")
    raise ApplicationError(
        _("You may not do this in the group %(group)s.") % {"group": group.name},
        code="permission_denied",
        status=403,
        details={"right": right},
    )

"""Reads for the bots' endpoints: the group and the activity a batch is for."""

from django.utils.translation import gettext as _

from core.errors import NotFound

from .. import access
from ..models import Activity, CommunityGroup


def _unknown_group(group_id) -> NotFound:
    return NotFound(_("No community group %(id)s.") % {"id": group_id}, code="unknown_group")


def ingest_group_get(*, group_id, viewer=None) -> CommunityGroup:
    """The group a batch is for. An API key may write to every group (a bot is set up by
    an admin); an operator's session only to a group they manage (404 for one they may
    not see, 403 for one they see without the right), as everywhere in communities."""
    if viewer is not None:
        return access.group_get(viewer, group_id, right=access.MANAGE)
    try:
        return CommunityGroup.objects.get(pk=int(group_id))
    except (CommunityGroup.DoesNotExist, TypeError, ValueError):
        raise _unknown_group(group_id) from None


def ingest_activity_get(*, group: CommunityGroup, code: str) -> Activity:
    activity = Activity.objects.filter(group=group, code=code).select_related("group").first()
    if activity is None:
        raise NotFound(
            _("No activity %(code)s in the group %(group)s.") % {"code": code, "group": group.code},
            code="unknown_activity",
        )
    return activity

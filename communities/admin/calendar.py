"""The admin for the content calendar and group health: both read-only here. Posts are
planned and marked done on the group's calendar page (``communities.services.calendar``,
which checks the group right and writes the audit row); health rows are written only by
the roll-up (``communities.services.health.health_rollup``). A staff user who does not
see every group sees the rows of the groups they see (``communities.access``)."""

from django.contrib import admin

from core.admin_base import ReadOnlyAdmin

from .. import access
from ..models import CommunityGroup, ContentPost, GroupHealthDay


class _VisibleGroupsOnly:
    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        visible = access.group_visible_q(request.user)
        if visible is None:
            return queryset
        return queryset.filter(group__in=CommunityGroup.objects.filter(visible))


@admin.register(ContentPost)
class ContentPostAdmin(_VisibleGroupsOnly, ReadOnlyAdmin):
    list_display = ["due_on", "due_time", "group", "kind", "content_class", "title", "status", "done_by", "done_at"]
    list_filter = ["status", "content_class", "kind", ("due_on", admin.DateFieldListFilter)]
    list_select_related = ["group", "done_by"]
    search_fields = ["title", "=group__code"]
    ordering = ["-due_on", "-id"]


@admin.register(GroupHealthDay)
class GroupHealthDayAdmin(_VisibleGroupsOnly, ReadOnlyAdmin):
    list_display = ["day", "group", "members", "messages", "active_members", "joins", "leaves", "leave_rate"]
    list_filter = [("day", admin.DateFieldListFilter)]
    list_select_related = ["group"]
    search_fields = ["=group__code"]
    ordering = ["-day", "group"]

"""Reads of groups: the list a user may see (filtered, with member counts) and one
group's detail (owner, staff and their rights).

Visibility is ``communities.access.groups_visible``: what a user may not see is never
read, so a second manager's list and detail know nothing of the first one's groups."""

from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, Q, QuerySet

from .. import access
from ..models import CommunityGroup, GroupStaff


@dataclass(frozen=True)
class GroupFilters:
    platform: str = ""
    status: str = ""
    tag: str = ""
    search: str = ""


def groups_list(*, viewer, filters: GroupFilters | None = None) -> QuerySet[CommunityGroup]:
    """The groups ``viewer`` may see, filtered, each with ``member_count`` (open spans)
    and the owner read in the same query."""
    filters = filters or GroupFilters()
    qs = access.groups_visible(viewer).select_related("owner")
    if filters.platform:
        qs = qs.filter(platform=filters.platform)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.search:
        qs = qs.filter(Q(name__icontains=filters.search) | Q(code__icontains=filters.search))
    if filters.tag:
        qs = _with_tag(qs, filters.tag)
    return qs.annotate(member_count=Count("memberships", filter=Q(memberships__left_at__isnull=True))).order_by(
        "name", "id"
    )


def _with_tag(qs: QuerySet[CommunityGroup], tag: str) -> QuerySet[CommunityGroup]:
    """Groups carrying ``tag``. PostgreSQL answers with jsonb containment; SQLite has no
    JSON containment lookup, so there the (small) table's tags are read and matched here
    — groups number in the thousands, never in the customers' millions."""
    if connection.vendor == "postgresql":
        return qs.filter(tags__contains=[tag])
    ids = [pk for pk, tags in qs.values_list("pk", "tags") if isinstance(tags, list) and tag in tags]
    return qs.filter(pk__in=ids)


def group_tags(*, viewer) -> list[str]:
    """Every tag of the groups ``viewer`` may see (the list page's tag filter)."""
    tags: set[str] = set()
    for row in access.groups_visible(viewer).values_list("tags", flat=True):
        if isinstance(row, list):
            tags.update(t for t in row if isinstance(t, str))
    return sorted(tags)


def group_detail(*, viewer, group_id) -> CommunityGroup:
    """The group (404 ``unknown_group`` unless visible) with its owner."""
    group = access.group_get(viewer, group_id)
    return CommunityGroup.objects.select_related("owner").get(pk=group.pk)


def group_staff(*, group: CommunityGroup) -> list[GroupStaff]:
    """The operators given the group, with their rights and, for a core member made
    group admin, the membership they hold."""
    return list(
        GroupStaff.objects.filter(group=group)
        .select_related("user", "granted_by", "membership__customer")
        .order_by("user__username")
    )


def group_codes() -> dict[str, str]:
    """Every group's code and name (the segment builder's choices, registered by console)."""
    return dict(CommunityGroup.objects.order_by("name", "code").values_list("code", "name"))


def operator_get(*, username: str):
    """An active operator account by username, or None."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(username=username, is_active=True).first()

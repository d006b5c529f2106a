"""Reads of memberships: a group's members (open spans, and the history of joins and
leaves), and the open memberships of many customers at once for their profiles."""

from collections import defaultdict
from collections.abc import Iterable

from django.db.models import QuerySet

from .. import access
from ..models import CommunityGroup, Membership

HISTORY_ROWS = 200


def group_members(*, group: CommunityGroup) -> QuerySet[Membership]:
    """The group's members now (open spans), with the customer and who invited them."""
    return (
        Membership.objects.filter(group=group, left_at__isnull=True)
        .select_related("customer", "invited_by")
        .order_by("-joined_at", "-id")
    )


def group_history(*, group: CommunityGroup, limit: int = HISTORY_ROWS) -> list[Membership]:
    """Every span of the group, newest first (a member who left and rejoined shows twice)."""
    return list(
        Membership.objects.filter(group=group)
        .select_related("customer", "invited_by")
        .order_by("-joined_at", "-id")[:limit]
    )


def group_open_membership(*, group: CommunityGroup, customer_external_id: str) -> Membership | None:
    return (
        Membership.objects.filter(group=group, customer__external_id=customer_external_id, left_at__isnull=True)
        .select_related("customer")
        .first()
    )


def customer_communities(*, customer_ids: Iterable[int]) -> dict[int, list[dict]]:
    """``{customer_id: [{"group", "name", "platform", "role", "joined_at"}, ...]}`` — the
    open memberships of every customer given, in one query (customers without any map to
    an empty list). ``joined_at`` is ISO 8601 with its offset, as the API shows times."""
    ids = list(dict.fromkeys(customer_ids))
    found: dict[int, list[dict]] = defaultdict(list)
    rows = (
        Membership.objects.filter(customer_id__in=ids, left_at__isnull=True)
        .order_by("customer_id", "joined_at", "id")
        .values_list("customer_id", "group__code", "group__name", "group__platform", "role", "joined_at")
    )
    for customer_id, code, name, platform, role, joined_at in rows:
        found[customer_id].append(
            {"group": code, "name": name, "platform": platform, "role": role, "joined_at": joined_at.isoformat()}
        )
    return {pk: found.get(pk, []) for pk in ids}


def memberships_visible(*, viewer, memberships: list[dict]) -> list[dict]:
    """The entries of a profile's ``communities`` section (``customer_communities``) in
    the groups ``viewer`` may see, in one query: an operator reading a profile learns
    nothing of another manager's groups, not even their codes. (An API key is the
    product backend's: it reads every membership, and the caller does not filter.)"""
    codes = {m["group"] for m in memberships}
    if not codes:
        return []
    visible = set(access.groups_visible(viewer).filter(code__in=codes).values_list("code", flat=True))
    return [m for m in memberships if m["group"] in visible]

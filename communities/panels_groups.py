"""The customer 360 page's community groups panel (composed by console): the
customer's open memberships from the profile section, each linked to its group page.
Only the groups the operator may see are listed (``communities.access``): a second
community manager learns nothing of the first one's groups here either, not even their
names. The profile API (the product backend's view) lists every membership."""

from django.utils.dateparse import parse_datetime

from .access import groups_visible
from .models import MemberRole, Platform


def customer_groups_panel_context(*, viewer, memberships: list[dict]) -> dict:
    """``memberships``: the profile's ``communities`` section (``customer_communities``)."""
    codes = [m["group"] for m in memberships]
    visible = dict(groups_visible(viewer).filter(code__in=codes).values_list("code", "pk")) if codes else {}
    platforms, roles = dict(Platform.choices), dict(MemberRole.choices)
    return {
        "rows": [
            {
                **m,
                "group_id": visible.get(m["group"]),
                "platform_label": platforms.get(m["platform"], m["platform"]),
                "role_label": roles.get(m["role"], m["role"]),
                "joined": parse_datetime(m["joined_at"]) if m.get("joined_at") else None,
            }
            for m in memberships
            if m["group"] in visible
        ]
    }

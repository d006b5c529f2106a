"""Operator roles as Django groups, defined here and synced after every migrate.

A permission written ``app.view_*`` means every view permission of that app;
one written ``!app.codename`` takes that permission back out (``users.view_pii``
is a "view" permission by name, but only roles that list it may see PII).
Admins (运营负责人) get every permission of Ops Desk's apps and manage operator
accounts (``ACCOUNT_PERMISSIONS``); what a role may do is
tested per role in tests/core/test_roles.py."""

from fnmatch import fnmatch

from django.utils.translation import pgettext_lazy

OPS_APPS = ["core", "users", "segments", "communities", "incentives", "campaigns", "feedback", "dashboards"]

VIEWER = "viewer"
OPERATOR = "operator"
COMMUNITY_MANAGER = "community_manager"
GROUP_ADMIN = "group_admin"
ADMIN = "admin"

ACCOUNT_PERMISSIONS = ["auth.view_user", "auth.add_user", "auth.change_user", "auth.view_group"]

_READ_ALL = [*(f"{app}.view_*" for app in OPS_APPS if app != "core"), "!users.view_pii", "!feedback.view_all_queues"]

# Working the queue; the rules (priority matrix, SLA policies, calendars, teams, VIP rule,
# canned replies) are the admins'. Every queue (view_all_queues) is the admins' too:
# others see their teams' tickets (feedback.selectors.tickets).
FEEDBACK_WORK = [
    "feedback.add_ticket",
    "feedback.change_ticket",
    "feedback.reply_ticket",
    "feedback.add_message",
    "feedback.change_theme",
    "feedback.add_roadmapitem",
    "feedback.change_roadmapitem",
    "feedback.add_npssurvey",
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    VIEWER: [*_READ_ALL],
    OPERATOR: [
        *_READ_ALL,
        "users.change_customer",
        "segments.add_*",
        "segments.change_*",
        "campaigns.add_*",
        "campaigns.change_*",
        # The contact policy (caps, quiet hours, back-off) is the admins'.
        "!campaigns.add_caprule",
        "!campaigns.change_caprule",
        "!campaigns.add_contactpolicy",
        "!campaigns.change_contactpolicy",
        *FEEDBACK_WORK,
        "incentives.adjust_points",
    ],
    # Their own groups only (communities.access); templates they write, admins approve;
    # keyword rules and the alert thresholds are the admins'.
    COMMUNITY_MANAGER: [
        "users.view_customer",
        "communities.*",
        "!communities.view_all_groups",
        "!communities.manage_all_groups",
        "!communities.approve_soptemplate",
        "!communities.*_keywordrule",
        "!communities.*_communitysettings",
        "!communities.delete_*",
        "feedback.view_*",
        "!feedback.view_all_queues",
        *FEEDBACK_WORK,
        "incentives.view_*",
    ],
    # A core member made group admin (分级管理): sees the groups given, does what the
    # group's owner ticked (post SOP content, handle risk members, …), edits no template.
    GROUP_ADMIN: [
        "users.view_customer",
        "communities.view_communitygroup",
        "communities.view_membership",
        "communities.view_contentpost",
        "communities.change_contentpost",
        "communities.view_soptemplate",
        "communities.view_soptemplateversion",
        "communities.view_alert",
        "communities.change_alert",
        "communities.view_riskaction",
        "communities.add_riskaction",
        "communities.view_grouphealthday",
    ],
    # Accounts: created, given roles, reset and deactivated (core.accounts), never deleted
    # (their audit rows point at them); roles are read-only, they are defined above.
    ADMIN: [*(f"{app}.*" for app in OPS_APPS), *ACCOUNT_PERMISSIONS],
}

ROLE_LABELS = {
    VIEWER: pgettext_lazy("role", "Viewer"),
    OPERATOR: pgettext_lazy("role", "Operator"),
    COMMUNITY_MANAGER: pgettext_lazy("role", "Community manager"),
    GROUP_ADMIN: pgettext_lazy("role", "Group admin"),
    ADMIN: pgettext_lazy("role", "Admin"),
}


def role_label(name: str) -> str:
    """The role's name in the operator's language (the group's key if it is not a role)."""
    return str(ROLE_LABELS.get(name, name))


def _matches(perm_label: str, patterns: list[str]) -> bool:
    if any(fnmatch(perm_label, p[1:]) for p in patterns if p.startswith("!")):
        return False
    return any(fnmatch(perm_label, p) for p in patterns if not p.startswith("!"))


def roles_sync(**_kwargs) -> None:
    """Creates the role groups and sets their permissions to exactly what ROLE_PERMISSIONS says."""
    from django.contrib.auth.models import Group, Permission

    perms = list(
        Permission.objects.select_related("content_type").filter(content_type__app_label__in=[*OPS_APPS, "auth"])
    )
    for role, patterns in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = [p for p in perms if _matches(f"{p.content_type.app_label}.{p.codename}", patterns)]
        group.permissions.set(wanted)

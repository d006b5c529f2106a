"""Every role's rights on the models that exist now (users and core)."""

import pytest
from django.contrib.auth.models import Group

from core.roles import ROLE_PERMISSIONS, roles_sync

pytestmark = pytest.mark.django_db

USERS_MODELS = ["customer", "customertag", "order", "event"]
CORE_MODELS = ["apikey", "auditentry", "jobrun"]


def _perms(model: str, app: str = "users") -> list[str]:
    return [f"{app}.{action}_{model}" for action in ("view", "add", "change", "delete")]


def _rights(user, perms):
    return {perm for perm in perms if user.has_perm(perm)}


ALL_USERS = [p for m in USERS_MODELS for p in _perms(m)] + ["users.view_pii"]
ALL_CORE = [p for m in CORE_MODELS for p in _perms(m, "core")]


def test_every_role_group_exists():
    assert set(Group.objects.values_list("name", flat=True)) >= set(ROLE_PERMISSIONS)


def test_viewer_reads_customers_but_changes_nothing_and_sees_no_pii(make_user):
    user = make_user("viewer")
    assert _rights(user, ALL_USERS) == {f"users.view_{m}" for m in USERS_MODELS}
    assert _rights(user, ALL_CORE) == set()


def test_operator_can_change_customers_but_not_see_pii_or_delete(make_user):
    user = make_user("operator")
    assert _rights(user, ALL_USERS) == {f"users.view_{m}" for m in USERS_MODELS} | {"users.change_customer"}
    assert _rights(user, ALL_CORE) == set()


def test_community_manager_can_view_customers_only(make_user):
    user = make_user("community_manager")
    assert _rights(user, ALL_USERS) == {"users.view_customer"}
    assert _rights(user, ALL_CORE) == set()


def test_admin_has_every_right_including_pii(make_user):
    user = make_user("admin")
    assert _rights(user, ALL_USERS) == set(ALL_USERS)
    assert _rights(user, ALL_CORE) == set(ALL_CORE)
    assert user.is_staff


def test_user_without_a_role_has_no_rights(make_user):
    user = make_user(None)
    assert _rights(user, ALL_USERS + ALL_CORE) == set()


def test_roles_sync_is_idempotent_and_repairs_drift():
    viewer = Group.objects.get(name="viewer")
    before = set(viewer.permissions.values_list("codename", flat=True))
    viewer.permissions.clear()
    roles_sync()
    roles_sync()
    assert set(viewer.permissions.values_list("codename", flat=True)) == before
    assert "view_pii" not in before

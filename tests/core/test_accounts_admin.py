"""Admins manage operator accounts in the admin: create, roles, password reset,
deactivate — each audited from → to, none granting a right the admin lacks."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.test import Client

from core.accounts import account_create, account_roles_set
from core.errors import ApplicationError
from core.models import AuditEntry

pytestmark = pytest.mark.django_db

User = get_user_model()
PASSWORD = "a-long-new-passphrase-9"


def _client(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def _role(name: str) -> Group:
    return Group.objects.get(name=name)


def test_the_admin_opens_accounts_and_roles_and_sees_them_on_the_index(make_user):
    client = _client(make_user("admin"))
    assert client.get("/admin/auth/user/").status_code == 200
    assert client.get("/admin/auth/group/").status_code == 200
    index = client.get("/admin/").content.decode()
    assert "/admin/auth/user/" in index and "/admin/auth/group/" in index


def test_other_roles_cannot_open_accounts(make_user):
    operator = make_user("operator")
    operator.is_staff = True  # even with admin-site access, the role has no account rights
    operator.save()
    assert _client(operator).get("/admin/auth/user/").status_code == 403


def test_an_admin_creates_an_operator_account_audited(make_user):
    admin = make_user("admin")
    r = _client(admin).post(
        "/admin/auth/user/add/",
        {
            "username": "li.na",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "first_name": "Na",
            "last_name": "Li",
            "email": "li.na@example.com",
            "roles": [_role("operator").pk],
        },
    )
    assert r.status_code == 302, r.context["adminform"].form.errors
    user = User.objects.get(username="li.na")
    assert user.check_password(PASSWORD) and user.is_active and not user.is_staff and not user.is_superuser
    assert list(user.groups.values_list("name", flat=True)) == ["operator"]
    entry = AuditEntry.objects.get(action="account.create", object_id=str(user.pk))
    assert entry.actor == admin
    assert entry.changes["roles"] == [[], ["operator"]] and entry.changes["username"] == [None, "li.na"]
    assert PASSWORD not in str(entry.changes)


def test_an_admin_changes_roles_audited_and_staff_follows_the_admin_role(make_user):
    admin = make_user("admin")
    user = make_user("viewer", username="wang")
    r = _client(admin).post(
        f"/admin/auth/user/{user.pk}/change/",
        {"first_name": "", "last_name": "", "email": "", "is_active": "on", "roles": [_role("admin").pk]},
    )
    assert r.status_code == 302, r.context["adminform"].form.errors
    user.refresh_from_db()
    assert list(user.groups.values_list("name", flat=True)) == ["admin"] and user.is_staff
    entry = AuditEntry.objects.get(action="account.roles")
    assert entry.changes == {"roles": [["viewer"], ["admin"]]} and entry.actor == admin


def test_an_admin_resets_a_password_audited_without_the_value(make_user):
    admin = make_user("admin")
    user = make_user("operator", username="zhao")
    r = _client(admin).post(f"/admin/auth/user/{user.pk}/password/", {"password1": PASSWORD, "password2": PASSWORD})
    assert r.status_code == 302, r.context["form"].errors
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    entry = AuditEntry.objects.get(action="account.password_reset")
    assert entry.changes == {"password": "reset"} and entry.actor == admin


def test_an_admin_deactivates_accounts_audited_but_not_their_own(make_user):
    admin = make_user("admin")
    user = make_user("operator", username="qian")
    r = _client(admin).post(
        "/admin/auth/user/", {"action": "deactivate", "_selected_action": [user.pk, admin.pk]}, follow=True
    )
    assert r.status_code == 200
    user.refresh_from_db()
    admin.refresh_from_db()
    assert not user.is_active and admin.is_active
    entry = AuditEntry.objects.get(action="account.active")
    assert entry.changes == {"is_active": [True, False]} and entry.object_id == str(user.pk)
    assert "You cannot deactivate your own account." in r.content.decode()
    assert ModelBackend().authenticate(None, username="qian", password="correct-horse-battery") is None


def test_an_admin_cannot_make_a_superuser(make_user):
    admin = make_user("admin")
    client = _client(admin)
    form = client.get("/admin/auth/user/add/").content.decode()
    assert 'name="is_superuser"' not in form
    with pytest.raises(ApplicationError) as exc:
        account_create(actor=admin, username="root2", password=PASSWORD, superuser=True)
    assert exc.value.code == "forbidden"
    assert not User.objects.filter(username="root2").exists()


def test_an_admin_cannot_edit_or_reset_a_superuser(make_user):
    admin = make_user("admin")
    root = User.objects.create_superuser("root", password="correct-horse-battery")
    client = _client(admin)
    r = client.post(
        f"/admin/auth/user/{root.pk}/change/",
        {"first_name": "x", "last_name": "", "email": "", "is_active": "", "roles": []},
    )
    assert r.status_code == 403
    assert (
        client.post(f"/admin/auth/user/{root.pk}/password/", {"password1": PASSWORD, "password2": PASSWORD}).status_code
        == 403
    )
    root.refresh_from_db()
    assert root.is_active and root.check_password("correct-horse-battery") and root.first_name == ""
    assert not AuditEntry.objects.filter(object_type="auth.user").exists()


def test_an_account_manager_cannot_grant_a_role_beyond_their_own_rights(make_user):
    # Someone who may manage accounts but does not hold the admin role's rights.
    manager = make_user(None, username="hr")
    manager.is_staff = True
    manager.save()
    manager.user_permissions.set(
        Permission.objects.filter(content_type__app_label="auth", codename__in=["view_user", "add_user", "change_user"])
    )
    manager = User.objects.get(pk=manager.pk)  # fresh permission cache
    user = make_user("viewer", username="sun")
    client = _client(manager)
    r = client.post(
        f"/admin/auth/user/{user.pk}/change/",
        {"first_name": "", "last_name": "", "email": "", "is_active": "on", "roles": [_role("admin").pk]},
    )
    assert r.status_code == 200  # re-rendered: admin is not a role they may grant
    assert list(user.groups.values_list("name", flat=True)) == ["viewer"]
    with pytest.raises(ApplicationError) as exc:
        account_roles_set(actor=manager, user=user, roles=[_role("admin")])
    assert exc.value.code == "forbidden" and "users.view_pii" in exc.value.details["permissions"]
    assert list(user.groups.values_list("name", flat=True)) == ["viewer"]
    assert not AuditEntry.objects.filter(action="account.roles").exists()


def test_roles_are_shown_but_not_edited_in_the_admin(make_user):
    client = _client(make_user("admin"))
    viewer = _role("viewer")
    assert client.get(f"/admin/auth/group/{viewer.pk}/change/").status_code == 200  # view only
    client.post(f"/admin/auth/group/{viewer.pk}/change/", {"name": "hacked", "permissions": []})
    viewer.refresh_from_db()
    assert viewer.name == "viewer" and viewer.permissions.exists()


def test_the_account_form_names_roles_in_the_operators_language(make_user):
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(make_user("admin"))
    page = client.get("/admin/auth/user/add/").content.decode()
    assert "运营专员" in page and "社群管理员" in page and "角色与权限" in page

"""Operator accounts: created, given roles, reset and deactivated by an admin, audited.

One rule holds every write here: an actor cannot give a right they do not hold.
A role (a group from ``core.roles``) may only be granted if every permission it
carries is one the actor has; only a superuser makes, edits or resets a
superuser; nobody deactivates themself (the last admin would lock everyone out).
Only admins reach the Django admin, so ``is_staff`` follows the admin role."""

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from .errors import ApplicationError
from .roles import ADMIN, ROLE_PERMISSIONS
from .services import audit_record

PROFILE_FIELDS = ("first_name", "last_name", "email")


def _perm_labels(groups: Iterable[Group]) -> set[str]:
    return {
        f"{app}.{codename}"
        for app, codename in Group.permissions.through.objects.filter(group__in=list(groups)).values_list(
            "permission__content_type__app_label", "permission__codename"
        )
    }


def grantable_roles(actor):
    """The role groups every permission of which ``actor`` holds (all of them for a superuser)."""
    roles = Group.objects.filter(name__in=ROLE_PERMISSIONS).order_by("name")
    if actor.is_superuser:
        return roles
    held = actor.get_all_permissions()
    return roles.filter(pk__in=[g.pk for g in roles if _perm_labels([g]) <= held])


def check_may_manage(actor, user) -> None:
    if user is not None and user.is_superuser and not actor.is_superuser:
        raise ApplicationError(_("Only a superuser may change a superuser's account."), code="forbidden", status=403)


def check_may_grant(actor, groups: list[Group], *, superuser: bool = False) -> None:
    if superuser and not actor.is_superuser:
        raise ApplicationError(_("Only a superuser may make a superuser."), code="forbidden", status=403)
    unknown = sorted(g.name for g in groups if g.name not in ROLE_PERMISSIONS)
    if unknown:
        raise ApplicationError(_("Unknown role(s): %(roles)s.") % {"roles": ", ".join(unknown)}, code="invalid_role")
    if actor.is_superuser:
        return
    missing = _perm_labels(groups) - actor.get_all_permissions()
    if missing:
        raise ApplicationError(
            _("You cannot grant rights you do not hold: %(perms)s.") % {"perms": ", ".join(sorted(missing))},
            code="forbidden",
            status=403,
            details={"permissions": sorted(missing)},
        )


def _check_password(password: str, user) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ApplicationError(" ".join(exc.messages), code="invalid_password") from exc


def _role_names(user) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


def _apply_roles(user, groups: list[Group]) -> None:
    user.groups.set(groups)
    staff = user.is_superuser or any(g.name == ADMIN for g in groups)
    if user.is_staff != staff:
        user.is_staff = staff
        user.save(update_fields=["is_staff"])


def account_create(
    *, actor, username: str, password: str, roles: Iterable[Group] = (), superuser: bool = False, **profile
):
    """A new operator account with its roles; the password is checked by the site's validators."""
    groups = list(roles)
    check_may_grant(actor, groups, superuser=superuser)
    User = get_user_model()
    username = username.strip()
    if not username:
        raise ApplicationError(_("An account needs a username."), code="invalid_username")
    if User.objects.filter(username=username).exists():
        raise ApplicationError(_("An account with this username exists already."), code="duplicate_username")
    user = User(username=username, is_superuser=superuser, is_staff=superuser, **profile)
    _check_password(password, user)
    user.set_password(password)
    with transaction.atomic():
        user.save()
        _apply_roles(user, groups)
        audit_record(
            actor=actor,
            action="account.create",
            obj=user,
            changes={"username": [None, username], "roles": [[], _role_names(user)], "is_superuser": [None, superuser]},
        )
    return user


def account_update(*, actor, user, superuser: bool | None = None, **profile):
    """Name and email (and, for a superuser actor, the superuser flag), audited from → to."""
    check_may_manage(actor, user)
    if superuser is not None and superuser != user.is_superuser:
        check_may_grant(actor, [], superuser=True)
        profile["is_superuser"] = superuser
    unknown = set(profile) - {*PROFILE_FIELDS, "is_superuser"}
    if unknown:
        raise ApplicationError(f"Not an account field: {', '.join(sorted(unknown))}.", code="invalid_field")
    before = {name: getattr(user, name) for name in profile}
    changed = [name for name, value in profile.items() if before[name] != value]
    if not changed:
        return user
    with transaction.atomic():
        for name in changed:
            setattr(user, name, profile[name])
        user.save(update_fields=changed)
        audit_record(
            actor=actor,
            action="account.change",
            obj=user,
            before={n: before[n] for n in changed},
            after={n: profile[n] for n in changed},
        )
    return user


def account_roles_set(*, actor, user, roles: Iterable[Group]):
    """Sets the account's roles to exactly ``roles`` (audited from → to)."""
    check_may_manage(actor, user)
    groups = list(roles)
    old = _role_names(user)
    # Roles kept as they were need no right; only newly granted ones are checked.
    check_may_grant(actor, [g for g in groups if g.name not in old])
    new = sorted(g.name for g in groups)
    if new == old:
        return user
    with transaction.atomic():
        _apply_roles(user, groups)
        audit_record(actor=actor, action="account.roles", obj=user, changes={"roles": [old, new]})
    return user


def account_password_reset(*, actor, user, password: str):
    """A new password set by an admin (the value is never audited, only that it was reset)."""
    check_may_manage(actor, user)
    _check_password(password, user)
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        audit_record(actor=actor, action="account.password_reset", obj=user, changes={"password": "reset"})
    return user


def account_active_set(*, actor, user, active: bool):
    """Deactivates (or reactivates) an account: a deactivated one cannot log in, its history stays."""
    check_may_manage(actor, user)
    if not active and user.pk == actor.pk:
        raise ApplicationError(_("You cannot deactivate your own account."), code="forbidden", status=403)
    if user.is_active == active:
        return user
    with transaction.atomic():
        user.is_active = active
        user.save(update_fields=["is_active"])
        audit_record(actor=actor, action="account.active", obj=user, changes={"is_active": [not active, active]})
    return user


def account_deactivate(*, actor, user):
    return account_active_set(actor=actor, user=user, active=False)

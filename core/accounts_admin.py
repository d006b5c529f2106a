"""Operator accounts in the admin: every write goes through ``core.accounts`` (audited,
and refusing to grant a right the admin does not hold). Roles are shown read-only:
they are defined in ``core.roles`` and re-synced after every migrate."""

from contextlib import contextmanager
from contextvars import ContextVar

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .accounts import (
    PROFILE_FIELDS,
    account_active_set,
    account_create,
    account_password_reset,
    account_roles_set,
    account_update,
    check_may_grant,
    check_may_manage,
    grantable_roles,
)
from .admin_base import ScaledListMixin
from .errors import ApplicationError
from .roles import role_label

User = get_user_model()
_password_actor: ContextVar = ContextVar("password_actor")


@contextmanager
def _acting(user):
    token = _password_actor.set(user)
    try:
        yield
    finally:
        _password_actor.reset(token)


class RolesField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj) -> str:
        return role_label(obj.name)


class _AccountForm(forms.ModelForm):
    """``actor`` is set on the class by ``AccountAdmin.get_form``."""

    actor = None
    roles = RolesField(
        label=_("roles"), queryset=Group.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = list(self.instance.groups.all()) if self.instance.pk else []
        grantable = grantable_roles(self.actor)
        self.fields["roles"].queryset = Group.objects.filter(
            pk__in=[*grantable.values_list("pk", flat=True), *(g.pk for g in current)]
        ).order_by("name")
        self.fields["roles"].initial = current
        if not self.actor.is_superuser:
            self.fields.pop("is_superuser", None)

    def clean(self):
        cleaned = super().clean()
        current = set(self.instance.groups.values_list("name", flat=True)) if self.instance.pk else set()
        granted = [g for g in cleaned.get("roles") or [] if g.name not in current]
        try:
            check_may_manage(self.actor, self.instance if self.instance.pk else None)
            check_may_grant(self.actor, granted, superuser=bool(cleaned.get("is_superuser")))
        except ApplicationError as exc:
            raise ValidationError(exc.message) from exc
        return cleaned


class AccountCreateForm(_AccountForm):
    password1 = forms.CharField(label=_("password"), strip=False, widget=forms.PasswordInput)
    password2 = forms.CharField(label=_("password (again)"), strip=False, widget=forms.PasswordInput)

    class Meta:
        model = User
        fields = ["username", "first_name", "last_name", "email", "is_superuser"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password1") and cleaned.get("password1") != cleaned.get("password2"):
            self.add_error("password2", _("The two passwords differ."))
        return cleaned


class AccountChangeForm(_AccountForm):
    class Meta:
        model = User
        fields = ["first_name", "last_name", "email", "is_active", "is_superuser"]


class AccountPasswordForm(AdminPasswordChangeForm):
    """A new password for the account, set by ``account_password_reset`` (audited)."""

    def __init__(self, user, *args, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.fields.pop("usable_password", None)  # accounts always log in with a password
        self.fields["password1"].required = self.fields["password2"].required = True

    def clean(self):
        cleaned = super().clean()
        cleaned["set_usable_password"] = True
        return cleaned

    def save(self, commit=True):
        actor = _password_actor.get()
        return account_password_reset(actor=actor, user=self.user, password=self.cleaned_data["password1"])


if admin.site.is_registered(User):
    admin.site.unregister(User)
if admin.site.is_registered(Group):
    admin.site.unregister(Group)


@admin.register(User)
class AccountAdmin(ScaledListMixin, UserAdmin):
    form = AccountChangeForm
    add_form = AccountCreateForm
    change_password_form = AccountPasswordForm
    list_display = ["username", "first_name", "last_name", "email", "role_names", "is_active", "last_login"]
    list_filter = ["is_active", "is_superuser", "groups"]
    list_select_related = []
    readonly_fields = ["username", "last_login", "date_joined"]
    fieldsets = [
        (None, {"fields": ["username", "password_link"]}),
        (_("Personal info"), {"fields": ["first_name", "last_name", "email"]}),
        (_("Roles and access"), {"fields": ["roles", "is_active", "is_superuser"]}),
        (_("Important dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"fields": ["username", "password1", "password2"]}),
        (_("Personal info"), {"fields": ["first_name", "last_name", "email"]}),
        (_("Roles and access"), {"fields": ["roles", "is_superuser"]}),
    ]
    actions = ["deactivate", "reactivate"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description=_("roles"))
    def role_names(self, obj) -> str:
        return ", ".join(sorted(role_label(g.name) for g in obj.groups.all()))

    @admin.display(description=_("password"))
    def password_link(self, obj) -> str:
        if obj.pk is None:
            return ""
        return format_html(
            '<a class="button" href="{}">{}</a>',
            reverse("admin:auth_user_password_change", args=[obj.pk]),
            _("Reset password"),
        )

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "password_link"] if obj is not None else []

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        return [
            (title, {**opts, "fields": [f for f in opts["fields"] if f != "is_superuser"]}) for title, opts in fieldsets
        ]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False  # only a superuser edits a superuser (core.accounts says so too)
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False  # deactivated, never deleted: audit rows and history point at accounts

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            created = account_create(
                actor=request.user,
                username=data["username"],
                password=data["password1"],
                roles=data.get("roles") or [],
                superuser=bool(data.get("is_superuser")),
                **{f: data.get(f) or "" for f in PROFILE_FIELDS},
            )
            obj.pk = created.pk
            obj._state.adding = False
            return
        stored = User.objects.get(pk=obj.pk)
        account_update(
            actor=request.user,
            user=stored,
            superuser=data.get("is_superuser"),
            **{f: data.get(f) or "" for f in PROFILE_FIELDS},
        )
        account_roles_set(actor=request.user, user=stored, roles=data.get("roles") or [])
        account_active_set(actor=request.user, user=stored, active=data["is_active"])

    def save_related(self, request, form, formsets, change):
        """Writes nothing: the form's one related field, the roles, was written (and
        audited) by ``account_roles_set`` in ``save_model``; Django's default would
        write it again, unaudited."""

    def user_change_password(self, request, id, form_url=""):
        with _acting(request.user):
            return super().user_change_password(request, id, form_url)

    @admin.action(description=_("Deactivate selected accounts"), permissions=["change"])
    def deactivate(self, request, queryset):
        self._set_active(request, queryset, active=False)

    @admin.action(description=_("Reactivate selected accounts"), permissions=["change"])
    def reactivate(self, request, queryset):
        self._set_active(request, queryset, active=True)

    def _set_active(self, request, queryset, *, active: bool):
        done = 0
        for user in queryset:
            try:
                account_active_set(actor=request.user, user=user, active=active)
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{user.username}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(request, _("%(count)d account(s) updated.") % {"count": done}, messages.SUCCESS)


@admin.register(Group)
class RoleAdmin(ScaledListMixin, GroupAdmin):
    """Roles are defined in core/roles.py and re-synced after every migrate: shown, not edited."""

    list_display = ["name", "label"]

    @admin.display(description=_("role"))
    def label(self, obj) -> str:
        return role_label(obj.name)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

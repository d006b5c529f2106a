"""The admin for groups, the operators given them (staff) and memberships, with the
member list import and export (``communities.resources``).

One write path: a group's save is ``group_save``; a staff row's save ``staff_grant``
and its delete ``staff_revoke``; a membership added here is ``member_join``, a change
of its role ``member_role_set`` and filling in ``left_at`` ``member_leave`` — each
checks the operator's right on the group and writes the audit row. Each form runs its
service first in a savepoint it rolls back, so a refusal shows on the form and nothing
is written. Groups are archived (status), not deleted; memberships are history and are
never deleted here either. Lists show only the groups the operator may see
(``communities.access``)."""

import copy

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, Q
from django.forms.models import construct_instance
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from import_export.admin import ImportExportModelAdmin

from core import exports
from core.admin_base import ScaledListMixin
from core.errors import ApplicationError

from .. import access
from ..models import CommunityGroup, GroupStaff, Membership
from ..resources import MembershipResource
from ..services import groups as group_services


class _Rollback(Exception):
    """Ends a dry run: raised inside its savepoint so everything in it is rolled back."""


def _dry_run(call) -> ApplicationError | None:
    """Runs ``call`` in a savepoint that is always rolled back; returns its refusal, if any."""
    try:
        with transaction.atomic():
            call()
            raise _Rollback
    except _Rollback:
        return None
    except ApplicationError as exc:
        return exc


def _refusal_field(exc: ApplicationError, form) -> str | None:
    details = exc.details if isinstance(exc.details, dict) else {}
    return next((name for name in details if name in form.fields), None)


class _ServiceForm(forms.ModelForm):
    #: the operator making the edit (set per request by the admin's ``get_form``)
    actor = None

    def service_call(self):
        """The save's service call on a copy of the form's instance (overridden)."""
        raise NotImplementedError

    def _post_clean(self):
        super()._post_clean()
        if self._errors:
            return
        refusal = _dry_run(self.service_call)
        if refusal is not None:
            self.add_error(_refusal_field(refusal, self), refusal.message)


class _GroupScopedAdmin(ScaledListMixin, admin.ModelAdmin):
    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "group":
            kwargs["queryset"] = access.groups_visible(request.user).order_by("name")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


# --- groups --------------------------------------------------------------------------


class CommunityGroupForm(_ServiceForm):
    class Meta:
        model = CommunityGroup
        fields = group_services.GROUP_FIELDS

    def service_call(self):
        group_services.group_save(group=copy.copy(self.instance), actor=self.actor)


@admin.register(CommunityGroup)
class CommunityGroupAdmin(_GroupScopedAdmin):
    form = CommunityGroupForm
    list_display = ["name", "code", "platform", "status", "owner", "capacity", "member_count", "updated_at"]
    list_filter = ["platform", "status"]
    list_select_related = ["owner"]
    search_fields = ["=code", "=platform_group_id"]
    search_help_text = _("A group's code or its platform group id.")
    readonly_fields = ["created_at", "updated_at"]

    def get_queryset(self, request):
        open_spans = Count("memberships", filter=Q(memberships__left_at__isnull=True))
        return access.groups_visible(request.user).annotate(member_count=open_spans)

    @admin.display(description=_("members"), ordering="member_count")
    def member_count(self, obj: CommunityGroup) -> int:
        return obj.member_count

    def has_delete_permission(self, request, obj=None):
        return False  # archived through the status, never deleted (memberships and health are history)

    def save_model(self, request, obj, form, change):
        group_services.group_save(group=obj, actor=request.user)

    def save_related(self, request, form, formsets, change):
        pass  # no many-to-many fields or inlines: group_save wrote everything


# --- staff ---------------------------------------------------------------------------


class GroupStaffForm(_ServiceForm):
    class Meta:
        model = GroupStaff
        fields = ["group", "user", "membership", *group_services.STAFF_FLAGS]

    def service_call(self):
        data = self.cleaned_data
        group = data.get("group") or self.instance.group
        user = data.get("user") or self.instance.user
        group_services.staff_grant(
            group=group,
            user=user,
            actor=self.actor,
            membership=data.get("membership"),
            **{flag: data.get(flag, False) for flag in group_services.STAFF_FLAGS},
        )


@admin.register(GroupStaff)
class GroupStaffAdmin(_GroupScopedAdmin):
    form = GroupStaffForm
    list_display = ["user", "group", "can_manage", "can_post", "can_handle_risk", "can_handle_alerts", "granted_at"]
    list_filter = ["can_manage", "can_post", "can_handle_risk", "can_handle_alerts"]
    list_select_related = ["user", "group"]
    search_fields = ["=user__username", "=group__code"]
    raw_id_fields = ["membership"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(group__in=access.groups_visible(request.user))

    def get_readonly_fields(self, request, obj=None):
        # Another person or group is another grant: revoke this one and grant that.
        return ["group", "user", "granted_by", "granted_at"] if obj else ["granted_by", "granted_at"]

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        stored = group_services.staff_grant(
            group=data.get("group") or obj.group,
            user=data.get("user") or obj.user,
            actor=request.user,
            membership=data.get("membership"),
            **{flag: data.get(flag, False) for flag in group_services.STAFF_FLAGS},
        )
        obj.pk = stored.pk

    def delete_model(self, request, obj):
        group_services.staff_revoke(staff=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for staff in queryset.select_related("group", "user"):
            group_services.staff_revoke(staff=staff, actor=request.user)


# --- memberships ---------------------------------------------------------------------

MEMBERSHIP_ADD_FIELDS = ["group", "customer", "role", "joined_at", "platform_member_id", "invited_by"]
MEMBERSHIP_CHANGE_FIELDS = ["role", "left_at", "left_reason"]


def membership_changes_apply(*, span: Membership, data: dict, changed, actor) -> Membership:
    """The admin form's edit as the services' calls: the role, then leaving."""
    if "role" in changed:
        span = group_services.member_role_set(group=span.group, customer=span.customer, role=data["role"], actor=actor)
    if "left_at" in changed or "left_reason" in changed:
        if span.left_at is not None or data.get("left_at") is None:
            raise ApplicationError(
                _("A span that has ended stays as it is; a member leaves once, by filling in left at."),
                code="invalid",
                details={"left_at": ["only once"]},
            )
        span = group_services.member_leave(
            group=span.group,
            customer=span.customer,
            left_at=data["left_at"],
            reason=data.get("left_reason") or "",
            actor=actor,
        )
    return span


class MembershipForm(_ServiceForm):
    class Meta:
        model = Membership
        fields = [*MEMBERSHIP_ADD_FIELDS, "left_at", "left_reason"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "joined_at" in self.fields:
            self.fields["joined_at"].required = False
            self.fields["joined_at"].help_text = _("Empty: now.")

    def service_call(self):
        data = self.cleaned_data
        if self.instance.pk is None:
            group_services.member_join(
                group=data["group"],
                customer=data["customer"],
                role=data["role"],
                joined_at=data.get("joined_at"),
                platform_member_id=data.get("platform_member_id") or "",
                invited_by=data.get("invited_by"),
                actor=self.actor,
            )
            return
        stored = Membership.objects.select_related("group", "customer").get(pk=self.instance.pk)
        changed = [name for name in self.changed_data if name in MEMBERSHIP_CHANGE_FIELDS]
        membership_changes_apply(span=stored, data=data, changed=changed, actor=self.actor)

    def _post_clean(self):
        # The instance as a ModelForm builds it, but its checks are the services': the model's
        # constraints (one open span, leaving after joining) would answer with a generic
        # message where member_join and member_leave say what is wrong.
        opts = self._meta
        self.instance = construct_instance(self, self.instance, opts.fields, opts.exclude)
        if self._errors:
            return
        refusal = _dry_run(self.service_call)
        if refusal is not None:
            self.add_error(_refusal_field(refusal, self), refusal.message)


@admin.register(Membership)
class MembershipAdmin(_GroupScopedAdmin, ImportExportModelAdmin):
    form = MembershipForm
    resource_classes = [MembershipResource]
    formats = import_formats = export_formats = exports.FORMATS  # no cell exported as a live formula
    skip_admin_log = True  # each member_join writes the audit row
    list_display = ["customer", "group", "role", "joined_at", "left_at", "invited_by"]
    list_filter = ["role", "group__platform"]
    list_select_related = ["customer", "group", "invited_by"]
    search_fields = ["=customer__external_id", "=group__code", "=platform_member_id"]
    search_help_text = _("A customer's external id, a group's code or a platform member id.")
    raw_id_fields = ["customer", "invited_by"]
    ordering = ["-pk"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if access.sees_all(request.user):
            return queryset
        return queryset.filter(group__in=access.groups_visible(request.user))

    def get_readonly_fields(self, request, obj=None):
        return ["group", "customer", "joined_at", "platform_member_id", "invited_by"] if obj else []

    def get_fields(self, request, obj=None):
        return [*MEMBERSHIP_ADD_FIELDS, "left_at", "left_reason"] if obj else MEMBERSHIP_ADD_FIELDS

    def has_delete_permission(self, request, obj=None):
        return False  # a span is history: members leave, they are not deleted

    def has_import_permission(self, request):
        return request.user.has_perm("communities.add_membership")

    def has_export_permission(self, request):
        return self.has_view_permission(request)

    def get_import_resource_kwargs(self, request, *args, **kwargs):
        # members_join_many checks the importing operator's right and audits under them.
        return {**super().get_import_resource_kwargs(request, *args, **kwargs), "actor": request.user}

    def get_import_data_kwargs(self, **kwargs):
        kwargs = super().get_import_data_kwargs(**kwargs)
        # One bad row rolls the whole file back, on the confirm step too (the file may have changed).
        kwargs["use_transactions"] = True
        kwargs["rollback_on_validation_errors"] = True
        return kwargs

    def process_result(self, result, request):
        if result.has_errors() or result.has_validation_errors():
            messages.error(request, _("The file has invalid rows; nothing was imported. Check it and import again."))
            return HttpResponseRedirect(reverse("admin:communities_membership_import"))
        return super().process_result(result, request)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            stored = group_services.member_join(
                group=data["group"],
                customer=data["customer"],
                role=data["role"],
                joined_at=data.get("joined_at"),
                platform_member_id=data.get("platform_member_id") or "",
                invited_by=data.get("invited_by"),
                actor=request.user,
            )
        else:
            span = Membership.objects.select_related("group", "customer").get(pk=obj.pk)
            changed = [name for name in form.changed_data if name in MEMBERSHIP_CHANGE_FIELDS]
            stored = membership_changes_apply(span=span, data=data, changed=changed, actor=request.user)
        # The admin goes on to redirect with ``obj``: make it the row the services wrote.
        for field in Membership._meta.concrete_fields:
            setattr(obj, field.attname, getattr(stored, field.attname))

    def save_related(self, request, form, formsets, change):
        pass  # no many-to-many fields or inlines: the services wrote everything

"""Operator pages of community groups: the list (the groups the user may see, filtered
by platform, status and tag, with member counts), a group (members with role and span,
the join/leave history, who invited whom, the staff and their rights), creating and
editing a group, adding a member, a member's role and leaving, and giving or taking an
operator's rights on the group.

Views check the shape of the input, then call one selector or service. Object-level
access is ``communities.access``: a group the user may not see is 404 (nothing of it
leaks), a visible group without the right is 403; a refusal of a service shows as a
message and, since each service writes in one transaction, nothing is written."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from core.errors import ApplicationError, NotFound
from users import selectors as users_selectors

from . import access
from .forms_groups import GroupFilterForm, GroupForm, MemberAddForm, MemberLeaveForm, MemberRoleForm, StaffGrantForm
from .models import CommunityGroup, GroupStaff, Membership
from .selectors import groups as group_selectors
from .selectors import members as member_selectors
from .services import groups as group_services
from .views_access import page_group as _group

VIEW_PERM = "communities.view_communitygroup"
RIGHT_LABELS = {
    access.MANAGE: gettext_lazy("can manage the group"),
    access.POST: gettext_lazy("can post SOP content"),
    access.HANDLE_RISK: gettext_lazy("can handle risk members"),
    access.HANDLE_ALERTS: gettext_lazy("can handle keyword alerts"),
}


def _ctx(**extra) -> dict:
    return {"display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE, **extra}


def _refused(request, exc: ApplicationError, group: CommunityGroup):
    if isinstance(exc, NotFound) and exc.code == "unknown_group":
        raise Http404(exc.message)
    if exc.status_code == 403:
        raise PermissionDenied(exc.message)
    messages.error(request, exc.message)
    return redirect("communities:group", group_id=group.pk)


def _form_errors(request, form) -> None:
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        for error in errors:
            messages.error(request, f"{label}: {error}" if label else error)


def _customer(external_id: str, column: str):
    try:
        return users_selectors.customer_ref(external_id=external_id)
    except NotFound:
        raise ApplicationError(
            _("Unknown customer %(id)s.") % {"id": external_id}, code="unknown_customer", details={column: ["unknown"]}
        ) from None


# --- list ----------------------------------------------------------------------------


@login_required
@permission_required(VIEW_PERM, raise_exception=True)
def group_list(request):
    form = GroupFilterForm(request.GET or None, tags=group_selectors.group_tags(viewer=request.user))
    filters = form.filters()
    groups = group_selectors.groups_list(
        viewer=request.user,
        filters=group_selectors.GroupFilters(
            platform=filters.get("platform", ""),
            status=filters.get("status", ""),
            tag=filters.get("tag", ""),
            search=filters.get("q", ""),
        ),
    )
    return render(
        request,
        "communities/groups/group_list.html",
        _ctx(form=form, groups=groups, can_create=request.user.has_perm("communities.add_communitygroup")),
    )


# --- one group -----------------------------------------------------------------------


@login_required
@permission_required(VIEW_PERM, raise_exception=True)
def group_detail(request, group_id):
    group = _group(request, group_id)
    rights = access.rights_of(request.user, group)
    can_manage = access.MANAGE in rights
    return render(
        request,
        "communities/groups/group_detail.html",
        _ctx(
            group=group,
            rights=[RIGHT_LABELS[r] for r in access.RIGHTS if r in rights],
            can_manage=can_manage,
            # the risk-member page opens to those who handle them and to those who see every group
            can_see_risk=access.HANDLE_RISK in rights or access.sees_all(request.user),
            members=list(member_selectors.group_members(group=group)),
            history=member_selectors.group_history(group=group),
            staff=group_selectors.group_staff(group=group),
            add_form=MemberAddForm() if can_manage else None,
            staff_form=StaffGrantForm() if can_manage else None,
            role_form=MemberRoleForm(),
        ),
    )


def _group_form_page(request, form, group: CommunityGroup | None):
    return render(request, "communities/groups/group_form.html", _ctx(form=form, group=group))


@login_required
@permission_required("communities.add_communitygroup", raise_exception=True)
def group_create(request):
    may_set_owner = access.manages_all(request.user)
    if request.method != "POST":
        return _group_form_page(request, GroupForm(may_set_owner=may_set_owner), None)
    form = GroupForm(request.POST, instance=CommunityGroup(owner=request.user), may_set_owner=may_set_owner)
    if not form.is_valid():
        return _group_form_page(request, form, None)
    try:
        group = group_services.group_save(group=form.instance, actor=request.user)
    except ApplicationError as exc:
        if exc.status_code == 403:
            raise PermissionDenied(exc.message) from exc
        form.add_error(None, exc.message)
        return _group_form_page(request, form, None)
    messages.success(request, _("Group %(name)s created.") % {"name": group.name})
    return redirect("communities:group", group_id=group.pk)


@login_required
@permission_required(VIEW_PERM, raise_exception=True)
def group_edit(request, group_id):
    group = _group(request, group_id, right=access.MANAGE)
    may_set_owner = access.manages_all(request.user) or group.owner_id == request.user.pk
    if request.method != "POST":
        return _group_form_page(request, GroupForm(instance=group, may_set_owner=may_set_owner), group)
    form = GroupForm(request.POST, instance=group, may_set_owner=may_set_owner)
    if not form.is_valid():
        return _group_form_page(request, form, group)
    try:
        group_services.group_save(group=form.instance, actor=request.user)
    except ApplicationError as exc:
        if exc.status_code == 403:
            raise PermissionDenied(exc.message) from exc
        form.add_error(None, exc.message)
        return _group_form_page(request, form, group)
    messages.success(request, _("Group %(name)s saved.") % {"name": group.name})
    return redirect("communities:group", group_id=group.pk)


# --- members -------------------------------------------------------------------------


def _span(group: CommunityGroup, membership_id) -> Membership:
    span = Membership.objects.select_related("customer").filter(group=group, pk=membership_id).first()
    if span is None:
        raise Http404(_("No such membership in this group."))
    return span


@login_required
@require_POST
@permission_required(VIEW_PERM, raise_exception=True)
def member_add(request, group_id):
    group = _group(request, group_id, right=access.MANAGE)
    form = MemberAddForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("communities:group", group_id=group.pk)
    data = form.cleaned_data
    try:
        customer = _customer(data["customer"], "customer")
        invited_by = _customer(data["invited_by"], "invited_by") if data["invited_by"] else None
        group_services.member_join(
            group=group,
            customer=customer,
            role=data["role"],
            joined_at=data["joined_at"],
            platform_member_id=data["platform_member_id"],
            invited_by=invited_by,
            actor=request.user,
        )
    except ApplicationError as exc:
        return _refused(request, exc, group)
    messages.success(request, _("%(id)s joined the group.") % {"id": customer.external_id})
    return redirect("communities:group", group_id=group.pk)


@login_required
@require_POST
@permission_required(VIEW_PERM, raise_exception=True)
def member_leave(request, group_id, membership_id):
    group = _group(request, group_id, right=access.MANAGE)
    span = _span(group, membership_id)
    form = MemberLeaveForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("communities:group", group_id=group.pk)
    try:
        group_services.member_leave(
            group=group, customer=span.customer, reason=form.cleaned_data["reason"], actor=request.user
        )
    except ApplicationError as exc:
        return _refused(request, exc, group)
    messages.success(request, _("%(id)s left the group.") % {"id": span.customer.external_id})
    return redirect("communities:group", group_id=group.pk)


@login_required
@require_POST
@permission_required(VIEW_PERM, raise_exception=True)
def member_role(request, group_id, membership_id):
    group = _group(request, group_id, right=access.MANAGE)
    span = _span(group, membership_id)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("communities:group", group_id=group.pk)
    try:
        group_services.member_role_set(
            group=group, customer=span.customer, role=form.cleaned_data["role"], actor=request.user
        )
    except ApplicationError as exc:
        return _refused(request, exc, group)
    messages.success(request, _("Role saved."))
    return redirect("communities:group", group_id=group.pk)


# --- staff ---------------------------------------------------------------------------


@login_required
@require_POST
@permission_required(VIEW_PERM, raise_exception=True)
def staff_grant(request, group_id):
    group = _group(request, group_id, right=access.MANAGE)
    form = StaffGrantForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("communities:group", group_id=group.pk)
    data = form.cleaned_data
    user = group_selectors.operator_get(username=data["username"])
    if user is None:
        messages.error(request, _("No active operator account %(name)s.") % {"name": data["username"]})
        return redirect("communities:group", group_id=group.pk)
    membership = None
    if data["member"]:
        membership = member_selectors.group_open_membership(group=group, customer_external_id=data["member"])
        if membership is None:
            messages.error(request, _("%(id)s is not a member of this group.") % {"id": data["member"]})
            return redirect("communities:group", group_id=group.pk)
    try:
        group_services.staff_grant(
            group=group,
            user=user,
            actor=request.user,
            membership=membership,
            **{flag: data[flag] for flag in group_services.STAFF_FLAGS},
        )
    except ApplicationError as exc:
        return _refused(request, exc, group)
    messages.success(request, _("Rights of %(name)s saved.") % {"name": user.get_username()})
    return redirect("communities:group", group_id=group.pk)


@login_required
@require_POST
@permission_required(VIEW_PERM, raise_exception=True)
def staff_revoke(request, group_id, staff_id):
    group = _group(request, group_id, right=access.MANAGE)
    staff = GroupStaff.objects.select_related("user", "group").filter(group=group, pk=staff_id).first()
    if staff is None:
        raise Http404(_("No such staff entry in this group."))
    try:
        group_services.staff_revoke(staff=staff, actor=request.user)
    except ApplicationError as exc:
        return _refused(request, exc, group)
    messages.success(request, _("Rights of %(name)s taken back.") % {"name": staff.user.get_username()})
    return redirect("communities:group", group_id=group.pk)

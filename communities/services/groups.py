"""Groups, the operators given them, and memberships (join, leave, role).

A membership is a span: joining opens one, leaving closes it, and rejoining opens a
new one, so a member who left and came back has two rows and the group's history
(and its leave rate) stays true.

With an ``actor``, every write checks the actor's right on the group
(``communities.access``): 404 for a group they may not see, 403 without the right.
Without one (a bot's ingestion, a task) the caller has checked already. Creating a
group needs the model permission ``communities.add_communitygroup``; a creator who does
not manage every group becomes its owner (they cannot hand a new group to someone else)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ApplicationError, Conflict
from core.services import audit_record, audit_record_many, audit_snapshot
from users.models import Customer

from .. import access
from ..models import CommunityGroup, GroupStaff, MemberRole, Membership

GROUP_FIELDS = [
    "code",
    "name",
    "platform",
    "platform_group_id",
    "theme",
    "tags",
    "owner",
    "capacity",
    "status",
    "description",
]
STAFF_FLAGS = ["can_manage", "can_post", "can_handle_risk", "can_handle_alerts"]
#: how far a join time may lie ahead of the server's clock (the clock of the machine that reported it)
JOIN_CLOCK_SLACK = timedelta(minutes=5)


def _invalid(exc: ValidationError) -> ApplicationError:
    details = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
    first = next(iter(details.values()))[0]
    return ApplicationError(str(first), code="invalid", details=details)


def _clean_tags(tags) -> list[str]:
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ApplicationError(_("Tags must be a list of words."), code="invalid", details={"tags": ["list"]})
    cleaned = sorted({t.strip() for t in tags if t.strip()})
    if len(cleaned) > 20 or any(len(t) > 40 for t in cleaned):
        raise ApplicationError(
            _("At most 20 tags of at most 40 characters."), code="invalid", details={"tags": ["too many or too long"]}
        )
    return cleaned


def group_save(*, group: CommunityGroup, actor=None) -> CommunityGroup:
    """Creates or updates a group (the admin's and the pages' one path)."""
    stored = CommunityGroup.objects.get(pk=group.pk) if group.pk else None
    if stored is not None and actor is not None:
        access.require(actor, stored, access.MANAGE)
        if stored.owner_id != group.owner_id and not access.manages_all(actor) and stored.owner_id != actor.pk:
            # Staff with can_manage run the group; handing it to another owner is the owner's or an admin's.
            raise ApplicationError(
                _("Only the owner or an admin may give the group another owner."),
                code="permission_denied",
                status=403,
                details={"owner": ["not yours to change"]},
            )
    if stored is None and actor is not None:
        if not actor.has_perm("communities.add_communitygroup"):
            raise ApplicationError(_("You may not create community groups."), code="permission_denied", status=403)
        if not access.manages_all(actor):
            group.owner = actor
    before = audit_snapshot(stored, GROUP_FIELDS) if stored is not None else None
    group.tags = _clean_tags(group.tags)
    try:
        group.full_clean()
    except ValidationError as exc:
        raise _invalid(exc) from None
    try:
        with transaction.atomic():
            created = group.pk is None
            group.save()
            audit_record(
                actor=actor,
                action="community_group.create" if created else "community_group.update",
                obj=group,
                before=before,
                after=audit_snapshot(group, GROUP_FIELDS),
            )
    except IntegrityError:
        # Two saves racing past full_clean's checks: the constraint answers for them.
        raise Conflict(_("Another group already has this code or platform group id."), code="duplicate_group") from None
    return group


def staff_grant(*, group: CommunityGroup, user, actor, membership: Membership | None = None, **flags) -> GroupStaff:
    """Gives ``user`` the group with the rights in ``flags`` (``can_manage``, ``can_post``,
    ``can_handle_risk``, ``can_handle_alerts``); granting again updates the rights."""
    access.require(actor, group, access.MANAGE)
    unknown = set(flags) - set(STAFF_FLAGS)
    if unknown:
        raise ApplicationError(_("Unknown right(s): %(r)s.") % {"r": ", ".join(sorted(unknown))}, code="invalid")
    if membership is not None and membership.group_id != group.pk:
        raise ApplicationError(_("That membership is in another group."), code="invalid")
    if membership is not None and membership.left_at is not None:
        raise ApplicationError(_("That member has left the group."), code="invalid", details={"membership": ["left"]})
    if not user.is_active or not user.has_perm("communities.view_communitygroup"):
        # Rights given to an account that cannot open the community pages would do nothing.
        raise ApplicationError(
            _("%(user)s has no role that works in community groups (give them the group admin role first).")
            % {"user": user.get_username()},
            code="invalid",
            details={"user": ["no community role"]},
        )
    with transaction.atomic():
        staff, created = GroupStaff.objects.select_for_update().get_or_create(
            group=group, user=user, defaults={"granted_by": actor if getattr(actor, "pk", None) else None}
        )
        before = None if created else audit_snapshot(staff, STAFF_FLAGS)
        for name, value in flags.items():
            setattr(staff, name, bool(value))
        if membership is not None:
            staff.membership = membership
        staff.save()
        audit_record(
            actor=actor,
            action="group_staff.grant" if created else "group_staff.update",
            obj=staff,
            before=before,
            after={**audit_snapshot(staff, STAFF_FLAGS), "user": user.get_username(), "group": group.code},
        )
    return staff


def staff_revoke(*, staff: GroupStaff, actor) -> None:
    access.require(actor, staff.group, access.MANAGE)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="group_staff.revoke",
            obj=staff,
            changes={"user": [staff.user.get_username(), None], "group": [staff.group.code, None]},
        )
        staff.delete()


def _check_role(role: str) -> None:
    if role not in MemberRole.values:
        raise ApplicationError(
            _("Unknown role %(role)s; one of %(roles)s.") % {"role": role, "roles": ", ".join(MemberRole.values)},
            code="invalid",
            details={"role": [role]},
        )


def _join_checked(
    *, role: str, joined_at: datetime | None, customer: Customer, invited_by: Customer | None, now=None
) -> datetime:
    """A join's checks (known role, not in the future, nobody invites themselves); the
    join time, now when none is given."""
    _check_role(role)
    now = now or timezone.now()
    joined_at = joined_at or now
    if joined_at > now + JOIN_CLOCK_SLACK:
        raise ApplicationError(
            _("Joining in the future: %(at)s is after now.") % {"at": joined_at.isoformat()},
            code="invalid",
            details={"joined_at": ["in the future"]},
        )
    if invited_by is not None and invited_by.pk == customer.pk:
        raise ApplicationError(
            _("A member cannot invite themselves."), code="invalid", details={"invited_by": ["self"]}
        )
    return joined_at


def member_join(
    *,
    group: CommunityGroup,
    customer: Customer,
    role: str = MemberRole.MEMBER,
    joined_at: datetime | None = None,
    platform_member_id: str = "",
    invited_by: Customer | None = None,
    actor=None,
) -> Membership:
    """Opens a span. A customer already in the group is a conflict (409), not a second span."""
    if actor is not None:
        access.require(actor, group, access.MANAGE)
    joined_at = _join_checked(role=role, joined_at=joined_at, customer=customer, invited_by=invited_by)
    try:
        with transaction.atomic():
            membership = Membership.objects.create(
                group=group,
                customer=customer,
                role=role,
                joined_at=joined_at,
                platform_member_id=platform_member_id,
                invited_by=invited_by,
            )
            audit_record(
                actor=actor,
                action="membership.join",
                obj=membership,
                changes={"group": [None, group.code], "customer": [None, customer.external_id], "role": [None, role]},
            )
    except IntegrityError:
        raise Conflict(
            _("%(customer)s is already in %(group)s.") % {"customer": customer.external_id, "group": group.name},
            code="already_member",
        ) from None
    return membership


@dataclass(frozen=True)
class Join:
    """One span ``members_join_many`` opens (the arguments of ``member_join``)."""

    group: CommunityGroup
    customer: Customer
    role: str = MemberRole.MEMBER
    joined_at: datetime | None = None
    platform_member_id: str = ""
    invited_by: Customer | None = None


def members_join_many(*, joins: list[Join], actor=None) -> list[Membership]:
    """Opens many spans at once (the member import), with ``member_join``'s checks and
    audit rows, in a number of queries that does not grow with the rows: the actor's
    right once per group, one insert of the spans, one of the audit rows. All or nothing:
    a refused join (a customer already in the group, a bad role or time) writes none."""
    if actor is not None:
        for group in {join.group.pk: join.group for join in joins}.values():
            access.require(actor, group, access.MANAGE)
    now = timezone.now()
    spans = []
    for join in joins:
        checks = {"role": join.role, "customer": join.customer, "invited_by": join.invited_by}
        joined_at = _join_checked(joined_at=join.joined_at, now=now, **checks)
        spans.append(
            Membership(
                group=join.group,
                customer=join.customer,
                role=join.role,
                joined_at=joined_at,
                platform_member_id=join.platform_member_id,
                invited_by=join.invited_by,
            )
        )
    try:
        with transaction.atomic():
            created = Membership.objects.bulk_create(spans, batch_size=1000)
            audit_record_many(
                actor=actor,
                action="membership.join",
                items=[
                    (
                        span,
                        {
                            "group": [None, span.group.code],
                            "customer": [None, span.customer.external_id],
                            "role": [None, span.role],
                        },
                    )
                    for span in created
                ],
            )
    except IntegrityError:
        # Checked before by the caller (the import's preview); a concurrent join got there first.
        raise Conflict(
            _("A customer in the list is already in the group; nothing was imported."), code="already_member"
        ) from None
    return created


def _open_span(group: CommunityGroup, customer: Customer) -> Membership:
    span = Membership.objects.select_for_update().filter(group=group, customer=customer, left_at__isnull=True).first()
    if span is None:
        raise ApplicationError(
            _("%(customer)s is not in %(group)s.") % {"customer": customer.external_id, "group": group.name},
            code="not_member",
            status=404,
        )
    return span


def member_leave(
    *,
    group: CommunityGroup,
    customer: Customer,
    left_at: datetime | None = None,
    reason: str = "",
    actor=None,
    right: str = access.MANAGE,
) -> Membership:
    """Closes the customer's open span (404 ``not_member`` when there is none). The
    actor needs ``right`` on the group: ``manage``, or ``handle_risk`` for the removal
    of a risk member (``communities.services.risk``), which group admins may be given."""
    if actor is not None:
        access.require(actor, group, right)
    with transaction.atomic():
        span = _open_span(group, customer)
        left_at = left_at or timezone.now()
        if left_at < span.joined_at:
            raise ApplicationError(
                _("Leaving before joining: %(left)s is before %(joined)s.")
                % {"left": left_at.isoformat(), "joined": span.joined_at.isoformat()},
                code="invalid",
                details={"left_at": ["before joined_at"]},
            )
        span.left_at = left_at
        span.left_reason = reason[:200]
        span.save(update_fields=["left_at", "left_reason"])
        audit_record(actor=actor, action="membership.leave", obj=span, changes={"left_at": [None, left_at.isoformat()]})
    return span


def member_role_set(*, group: CommunityGroup, customer: Customer, role: str, actor=None) -> Membership:
    _check_role(role)
    if actor is not None:
        access.require(actor, group, access.MANAGE)
    with transaction.atomic():
        span = _open_span(group, customer)
        if span.role != role:
            audit_record(actor=actor, action="membership.role", obj=span, changes={"role": [span.role, role]})
            span.role = role
            span.save(update_fields=["role"])
    return span

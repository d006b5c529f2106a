"""Writes on tickets: open, move through the workflow, reply, note, assign, re-prioritise,
merge. Every interface (the API, the operator pages, the admin, the import) calls these.

Each write locks the ticket row, checks the workflow (``feedback.workflow``), moves the
SLA clock (``feedback.services.clock``) and appends the ticket's history
(``TicketEvent``: who, what, ``{field: [from, to]}``) in one transaction; emails and
CSAT invitations go out on commit."""

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.errors import ApplicationError, Conflict
from core.services import audit_value
from segments.selectors import customer_score
from users.models import Customer

from .. import workflow
from ..models import (
    Attachment,
    Category,
    Difficulty,
    Impact,
    Message,
    Priority,
    PriorityRule,
    Severity,
    Source,
    Status,
    Team,
    TeamCode,
    Ticket,
    TicketEvent,
    VipRule,
)
from ..priority import VipSpec, priority_decide
from . import clock, satisfaction

MAX_SUBJECT = 200
MAX_BODY = 20_000
_FIELD_LABELS = {"subject": gettext_lazy("subject"), "body": gettext_lazy("body")}

#: where a ticket goes when nobody says: suggestions to product, bugs to tech, the rest to operations
DEFAULT_TEAM = {
    Category.SUGGESTION: TeamCode.PRODUCT,
    Category.COMPLAINT: TeamCode.TECH,
    Category.EMOTIONAL: TeamCode.OPERATIONS,
    Category.QUESTION: TeamCode.OPERATIONS,
}

# A file's first bytes for the binary types we take: a declared image/png that is not a PNG is refused.
_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
    "application/pdf": (b"%PDF-",),
}


@dataclass(frozen=True)
class AttachmentIn:
    name: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class Opened:
    ticket: Ticket
    replayed: bool


@dataclass(frozen=True)
class Posted:
    message: Message
    replayed: bool


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def _actor_label(actor) -> str:
    return str(getattr(actor, "username", "") or actor or "system")[:150]


def _event(ticket: Ticket, *, actor, action: str, changes: dict | None = None, at: datetime) -> TicketEvent:
    return TicketEvent.objects.create(
        ticket=ticket,
        at=at,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=_actor_label(actor),
        action=action,
        changes={k: [audit_value(a), audit_value(b)] for k, (a, b) in (changes or {}).items()},
    )


def _clean_text(value: str, *, field: str, limit: int) -> str:
    text = (value or "").strip()
    label = _FIELD_LABELS.get(field, field)
    if not text:
        raise ApplicationError(
            _("The %(field)s must not be empty.") % {"field": label}, code="blank", details={field: "blank"}
        )
    if len(text) > limit:
        raise ApplicationError(
            _("The %(field)s is longer than %(limit)s characters.") % {"field": label, "limit": limit},
            code="too_long",
            details={field: "too_long"},
        )
    return text


def attachment_from_base64(*, name: str, content_type: str, content_base64: str) -> AttachmentIn:
    """Decodes an API attachment; size and type are checked by ``attachments_check``."""
    limit = settings.FEEDBACK_ATTACHMENT_MAX_BYTES
    if len(content_base64) > (limit * 4) // 3 + 8:
        raise ApplicationError(
            _("Attachment %(name)s is larger than %(limit)s bytes.") % {"name": name, "limit": limit},
            code="attachment_too_large",
            details={"attachment": name},
        )
    try:
        content = base64.b64decode(content_base64, validate=True)
    except (binascii.Error, ValueError):
        raise ApplicationError(
            _("Attachment %(name)s is not valid base64.") % {"name": name},
            code="attachment_invalid",
            details={"attachment": name},
        ) from None
    return AttachmentIn(name=name, content_type=content_type, content=content)


def attachments_check(attachments: Sequence[AttachmentIn]) -> None:
    """Refuses too many, too large, empty, or disallowed files (by declared type and, for
    binary types, by their first bytes) before anything is written."""
    limit, allowed = settings.FEEDBACK_ATTACHMENT_MAX_BYTES, settings.FEEDBACK_ATTACHMENT_TYPES
    if len(attachments) > settings.FEEDBACK_ATTACHMENT_MAX_COUNT:
        raise ApplicationError(
            _("At most %(n)s attachments per message.") % {"n": settings.FEEDBACK_ATTACHMENT_MAX_COUNT},
            code="too_many_attachments",
        )
    for a in attachments:
        details = {"attachment": a.name}
        if not a.name.strip() or "/" in a.name or "\\" in a.name or len(a.name) > 200:
            raise ApplicationError(
                _("An attachment needs a plain file name."), code="attachment_invalid", details=details
            )
        if len(a.content) > limit:
            raise ApplicationError(
                _("Attachment %(name)s is larger than %(limit)s bytes.") % {"name": a.name, "limit": limit},
                code="attachment_too_large",
                details=details,
            )
        if not a.content:
            raise ApplicationError(
                _("Attachment %(name)s is empty.") % {"name": a.name}, code="attachment_invalid", details=details
            )
        if a.content_type not in allowed or not a.content.startswith(_MAGIC.get(a.content_type, (b"",))):
            raise ApplicationError(
                _("Attachment %(name)s: type %(type)s is not allowed (allowed: %(allowed)s).")
                % {"name": a.name, "type": a.content_type, "allowed": ", ".join(allowed)},
                code="attachment_type_not_allowed",
                details=details,
            )


def _attachments_save(ticket: Ticket, message: Message | None, attachments: Iterable[AttachmentIn], at) -> None:
    for a in attachments:
        row = Attachment(
            ticket=ticket, message=message, name=a.name, content_type=a.content_type, size=len(a.content), created_at=at
        )
        # Through the storage API: the file system in the demo, S3 or the like by settings.
        row.file.save(a.name, ContentFile(a.content), save=False)
        row.save()


def _vip_specs() -> list[VipSpec]:
    return [
        VipSpec(r.name, frozenset(r.tiers or []), frozenset(r.rfm_groups or []), r.raise_by, r.max_priority)
        for r in VipRule.objects.filter(is_active=True).order_by("pk")
    ]


def _matrix() -> dict[tuple[str, str, str], str]:
    return {(r.impact, r.severity, r.difficulty): r.priority for r in PriorityRule.objects.all()}


def priority_for(
    *, customer: Customer | None, given: str | None, impact: str, severity: str, difficulty: str
) -> tuple[str, dict]:
    score = customer_score(customer=customer) if customer is not None else None
    return priority_decide(
        given=given,
        impact=impact,
        severity=severity,
        difficulty=difficulty,
        matrix=_matrix(),
        vip_rules=_vip_specs(),
        tier=getattr(score, "tier", "") or "",
        rfm_group=getattr(score, "rfm_group", "") or "",
    )


def _check_choice(value: str | None, choices, field: str) -> None:
    if value is not None and value not in choices.values:
        raise ApplicationError(
            _("Unknown %(field)s %(value)r.") % {"field": field, "value": value},
            code="invalid_choice",
            details={field: "invalid_choice"},
        )


def _replay(key: str, *, customer: Customer | None, subject: str, body: str) -> Opened:
    first = Ticket.objects.get(idempotency_key=key)
    if first.customer_id != (customer.pk if customer else None) or first.subject != subject or first.body != body:
        raise Conflict(
            _("This idempotency key was used for a different ticket."),
            code="idempotency_key_reused",
            details={"ticket": first.pk},
        )
    return Opened(first, replayed=True)


def ticket_open(
    *,
    customer: Customer | None,
    category: str,
    subject: str,
    body: str,
    source: str = Source.APP,
    priority: str | None = None,
    impact: str = Impact.ONE,
    severity: str = Severity.MINOR,
    difficulty: str = Difficulty.EASY,
    team: Team | None = None,
    attachments: Sequence[AttachmentIn] = (),
    idempotency_key: str | None = None,
    actor=None,
    now: datetime | None = None,
) -> Opened:
    """Opens a ticket with its SLA targets running. With an ``idempotency_key`` used
    before, answers the first ticket (``replayed``) when the request is the same and
    refuses (409) when it is not."""
    subject = _clean_text(subject, field="subject", limit=MAX_SUBJECT)
    body = _clean_text(body, field="body", limit=MAX_BODY)
    for value, choices, field in [
        (category, Category, "category"),
        (source, Source, "source"),
        (priority, Priority, "priority"),
        (impact, Impact, "impact"),
        (severity, Severity, "severity"),
        (difficulty, Difficulty, "difficulty"),
    ]:
        _check_choice(value, choices, field)
    attachments_check(attachments)
    if idempotency_key and Ticket.objects.filter(idempotency_key=idempotency_key).exists():
        return _replay(idempotency_key, customer=customer, subject=subject, body=body)
    at = _now(now)
    chosen, basis = priority_for(
        customer=customer, given=priority, impact=impact, severity=severity, difficulty=difficulty
    )
    team = team or Team.objects.filter(code=DEFAULT_TEAM[category]).first()
    try:
        with transaction.atomic():
            ticket = Ticket.objects.create(
                customer=customer,
                source=source,
                category=category,
                subject=subject,
                body=body,
                priority=chosen,
                priority_basis=basis,
                impact=impact,
                severity=severity,
                difficulty=difficulty,
                team=team,
                idempotency_key=idempotency_key or None,
                created_at=at,
                updated_at=at,
            )
            _attachments_save(ticket, None, attachments, at)
            clock.sla_targets_start(ticket=ticket, now=at)
            _event(ticket, actor=actor, action="opened", changes={"status": (None, ticket.status)}, at=at)
    except IntegrityError:
        # Two requests with the same key raced; the other one won.
        if idempotency_key and Ticket.objects.filter(idempotency_key=idempotency_key).exists():
            return _replay(idempotency_key, customer=customer, subject=subject, body=body)
        raise
    return Opened(ticket, replayed=False)


def _locked(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_for_update().get(pk=ticket.pk)


def _refuse_transition(ticket: Ticket, action: str) -> ApplicationError:
    return Conflict(
        _("A %(status)s ticket cannot be moved by “%(action)s”; allowed here: %(allowed)s.")
        % {
            "status": ticket.get_status_display(),
            "action": workflow.ACTION_LABELS.get(action, action),
            "allowed": ", ".join(str(workflow.ACTION_LABELS[a]) for a in workflow.actions_from(ticket.status)) or "-",
        },
        code="transition_not_allowed",
        details={"status": ticket.status, "action": action, "allowed": workflow.actions_from(ticket.status)},
    )


def _move(ticket: Ticket, action: str, *, actor, at: datetime) -> str:
    """Applies one workflow action to a locked ticket; returns the old status."""
    if ticket.merged_into_id is not None:
        raise Conflict(_("This ticket was merged into #%(id)s.") % {"id": ticket.merged_into_id}, code="ticket_merged")
    to = workflow.target_of(action, ticket.status)
    if to is None:
        raise _refuse_transition(ticket, action)
    old = ticket.status
    ticket.status = to
    changes: dict = {"status": (old, to)}
    if to == Status.RESOLVED:
        ticket.resolved_at = at
        changes["resolved_at"] = (None, at)
    elif to == Status.CLOSED:
        ticket.closed_at = at
    elif action == "reopen":
        changes["resolved_at"] = (ticket.resolved_at, None)
        ticket.resolved_at = ticket.closed_at = None
    ticket.updated_at = at
    ticket.save(update_fields=["status", "resolved_at", "closed_at", "updated_at"])
    clock.sla_on_status(ticket=ticket, old=old, new=to, now=at)
    _event(ticket, actor=actor, action=action, changes=changes, at=at)
    if to == Status.RESOLVED:
        satisfaction.csat_invite_on_commit(ticket=ticket)
    return old


def ticket_transition(*, ticket: Ticket, action: str, actor=None, now: datetime | None = None) -> Ticket:
    """Moves a ticket by one workflow action; anything the workflow does not declare is refused (409)."""
    if action not in workflow.TRANSITIONS:
        raise ApplicationError(_("Unknown action %(action)r.") % {"action": action}, code="invalid_action")
    at = _now(now)
    with transaction.atomic():
        locked = _locked(ticket)
        _move(locked, action, actor=actor, at=at)
    return locked


def _refuse_if_closed(ticket: Ticket) -> None:
    if ticket.merged_into_id is not None:
        raise Conflict(
            _("This ticket was merged into #%(id)s; reply there.") % {"id": ticket.merged_into_id},
            code="ticket_merged",
            details={"merged_into": ticket.merged_into_id},
        )
    if ticket.status == Status.CLOSED:
        raise Conflict(_("This ticket is closed: reopen it first."), code="ticket_closed")


def ticket_reply(
    *,
    ticket: Ticket,
    body: str,
    actor,
    then: str | None = None,
    attachments: Sequence[AttachmentIn] = (),
    now: datetime | None = None,
) -> Message:
    """An operator's public reply. The first one stops the first-response target; a reply
    to a new or triaged ticket starts work on it. ``then`` ("wait" or "resolve") moves it
    on in the same transaction (the page's "send and wait" / "send and resolve")."""
    body = _clean_text(body, field="body", limit=MAX_BODY)
    attachments_check(attachments)
    if then not in (None, "wait", "resolve"):
        raise ApplicationError(_("Unknown follow-up %(then)r.") % {"then": then}, code="invalid_action")
    at = _now(now)
    with transaction.atomic():
        locked = _locked(ticket)
        _refuse_if_closed(locked)
        message = Message.objects.create(ticket=locked, kind=Message.Kind.REPLY, author=actor, body=body, created_at=at)
        _attachments_save(locked, message, attachments, at)
        if locked.first_responded_at is None:
            locked.first_responded_at = at
            locked.save(update_fields=["first_responded_at"])
            clock.sla_first_response(ticket=locked, now=at)
        _event(locked, actor=actor, action="replied", changes={"message": (None, message.pk)}, at=at)
        if locked.status in (Status.NEW, Status.TRIAGED):
            _move(locked, "start", actor=actor, at=at)
        if then:
            _move(locked, then, actor=actor, at=at)
    return message


def ticket_note(*, ticket: Ticket, body: str, actor, now: datetime | None = None) -> Message:
    """An internal note: operators only, never shown to the customer or the app."""
    body = _clean_text(body, field="body", limit=MAX_BODY)
    at = _now(now)
    with transaction.atomic():
        locked = _locked(ticket)
        message = Message.objects.create(ticket=locked, kind=Message.Kind.NOTE, author=actor, body=body, created_at=at)
        _event(locked, actor=actor, action="noted", changes={"message": (None, message.pk)}, at=at)
    return message


def ticket_customer_reply(
    *,
    ticket: Ticket,
    body: str,
    idempotency_key: str | None = None,
    attachments: Sequence[AttachmentIn] = (),
    now: datetime | None = None,
) -> Posted:
    """The customer's reply (from the app). A ticket waiting on the customer goes back to
    in progress and its clock restarts; a resolved one is reopened; a closed one refuses
    (the customer opens a new ticket). Idempotent by ``idempotency_key`` per ticket."""
    body = _clean_text(body, field="body", limit=MAX_BODY)
    attachments_check(attachments)
    at = _now(now)
    with transaction.atomic():
        locked = _locked(ticket)
        if idempotency_key:
            first = Message.objects.filter(ticket=locked, idempotency_key=idempotency_key).first()
            if first is not None:
                if first.body != body:
                    raise Conflict(
                        _("This idempotency key was used for a different message."), code="idempotency_key_reused"
                    )
                return Posted(first, replayed=True)
        _refuse_if_closed(locked)
        message = Message.objects.create(
            ticket=locked, kind=Message.Kind.CUSTOMER, body=body, created_at=at, idempotency_key=idempotency_key
        )
        _attachments_save(locked, message, attachments, at)
        actor = "customer"
        _event(locked, actor=actor, action="customer_replied", changes={"message": (None, message.pk)}, at=at)
        if locked.status == Status.WAITING:
            _move(locked, "resume", actor=actor, at=at)
        elif locked.status == Status.RESOLVED:
            _move(locked, "reopen", actor=actor, at=at)
        else:
            locked.updated_at = at
            locked.save(update_fields=["updated_at"])
    return Posted(message, replayed=False)


def _assignee_check(team: Team | None, assignee) -> None:
    if assignee is None:
        return
    if not assignee.is_active or not assignee.has_perm("feedback.change_ticket"):
        raise ApplicationError(
            _("%(user)s cannot work tickets.") % {"user": assignee.get_username()},
            code="assignee_not_allowed",
            details={"assignee": assignee.pk},
        )
    if team is not None and not (team.lead_id == assignee.pk or team.members.filter(pk=assignee.pk).exists()):
        raise ApplicationError(
            _("%(user)s is not in the %(team)s team.") % {"user": assignee.get_username(), "team": team},
            code="assignee_not_in_team",
            details={"assignee": assignee.pk, "team": team.code},
        )


def ticket_assign(*, ticket: Ticket, team: Team | None, assignee, actor, now: datetime | None = None) -> Ticket:
    """Sets the team and the person (who must be in the team). A new team brings its calendar to the clock."""
    _assignee_check(team, assignee)
    at = _now(now)
    with transaction.atomic():
        locked = _locked(ticket)
        _refuse_if_closed(locked)
        changes = {}
        if locked.team_id != (team.pk if team else None):
            changes["team"] = (locked.team.code if locked.team else None, team.code if team else None)
        if locked.assignee_id != (assignee.pk if assignee else None):
            changes["assignee"] = (
                locked.assignee.get_username() if locked.assignee else None,
                assignee.get_username() if assignee else None,
            )
        if not changes:
            return locked
        locked.team, locked.assignee, locked.updated_at = team, assignee, at
        locked.save(update_fields=["team", "assignee", "updated_at"])
        if "team" in changes:
            clock.sla_reprioritize(ticket=locked, now=at)
        _event(locked, actor=actor, action="assigned", changes=changes, at=at)
    return locked


def tickets_assign_bulk(
    *, ticket_ids: Sequence[int], team: Team | None, assignee, actor, now: datetime | None = None
) -> int:
    """Assigns many tickets at once; all or none (one refusal names its ticket and writes nothing)."""
    _assignee_check(team, assignee)
    at = _now(now)
    count = 0
    with transaction.atomic():
        tickets = list(Ticket.objects.select_for_update().filter(pk__in=ticket_ids).order_by("pk"))
        missing = sorted(set(ticket_ids) - {t.pk for t in tickets})
        if missing:
            raise ApplicationError(
                _("Unknown ticket(s): %(ids)s.") % {"ids": missing}, code="not_found", details={"tickets": missing}
            )
        for ticket in tickets:
            try:
                ticket_assign(ticket=ticket, team=team, assignee=assignee, actor=actor, now=at)
            except ApplicationError as exc:
                exc.details = {**(exc.details or {}), "ticket": ticket.pk}
                raise
            count += 1
    return count


def ticket_update(
    *,
    ticket: Ticket,
    actor,
    category: str | None = None,
    priority: str | None = None,
    impact: str | None = None,
    severity: str | None = None,
    difficulty: str | None = None,
    now: datetime | None = None,
) -> Ticket:
    """Changes the category or the priority inputs. An explicit ``priority`` is the
    operator's call (``{"set_by": ...}``); new impact/severity/difficulty without one
    re-run the matrix and the VIP rule. Targets follow the new priority's policy."""
    for value, choices, field in [
        (category, Category, "category"),
        (priority, Priority, "priority"),
        (impact, Impact, "impact"),
        (severity, Severity, "severity"),
        (difficulty, Difficulty, "difficulty"),
    ]:
        _check_choice(value, choices, field)
    at = _now(now)
    with transaction.atomic():
        locked = _locked(ticket)
        _refuse_if_closed(locked)
        before = {f: getattr(locked, f) for f in ("category", "priority", "impact", "severity", "difficulty")}
        for field, value in [
            ("category", category),
            ("impact", impact),
            ("severity", severity),
            ("difficulty", difficulty),
        ]:
            if value is not None:
                setattr(locked, field, value)
        if priority is not None and priority != locked.priority:
            locked.priority_basis = {
                **locked.priority_basis,
                "set_by": {"user": _actor_label(actor), "from": locked.priority, "to": priority, "at": at.isoformat()},
            }
            locked.priority = priority
        elif priority is None and any(v is not None for v in (impact, severity, difficulty)):
            locked.priority, locked.priority_basis = priority_for(
                customer=locked.customer,
                given=None,
                impact=locked.impact,
                severity=locked.severity,
                difficulty=locked.difficulty,
            )
        changes = {f: (v, getattr(locked, f)) for f, v in before.items() if getattr(locked, f) != v}
        if not changes:
            return locked
        locked.updated_at = at
        locked.save()
        if "priority" in changes:
            clock.sla_reprioritize(ticket=locked, now=at)
        _event(locked, actor=actor, action="updated", changes=changes, at=at)
    return locked


def ticket_merge(*, duplicate: Ticket, into: Ticket, actor, now: datetime | None = None) -> Ticket:
    """Merges a duplicate into another ticket. Both keep their histories and messages;
    the duplicate is closed with ``merged_into`` set (its clock stops) and the primary's
    page shows the duplicate's conversation too."""
    if duplicate.pk == into.pk:
        raise ApplicationError(_("A ticket cannot be merged into itself."), code="merge_invalid")
    at = _now(now)
    with transaction.atomic():
        dup, primary = (
            Ticket.objects.select_for_update().get(pk=duplicate.pk),
            Ticket.objects.select_for_update().get(pk=into.pk),
        )
        if dup.merged_into_id is not None:
            raise Conflict(_("#%(id)s is already merged.") % {"id": dup.pk}, code="merge_invalid")
        if primary.merged_into_id is not None:
            raise Conflict(
                _("#%(id)s was itself merged into #%(into)s; merge into that one.")
                % {"id": primary.pk, "into": primary.merged_into_id},
                code="merge_invalid",
            )
        if primary.status == Status.CLOSED:
            raise Conflict(_("Cannot merge into a closed ticket."), code="merge_invalid")
        if dup.customer_id and primary.customer_id and dup.customer_id != primary.customer_id:
            raise ApplicationError(_("The tickets belong to different customers."), code="merge_customer_mismatch")
        old = dup.status
        dup.merged_into, dup.status, dup.closed_at, dup.updated_at = primary, Status.CLOSED, at, at
        dup.save(update_fields=["merged_into", "status", "closed_at", "updated_at"])
        if old != Status.CLOSED:
            clock.sla_on_status(ticket=dup, old=old, new=Status.CLOSED, now=at)
        _event(
            dup,
            actor=actor,
            action="merged_into",
            changes={"merged_into": (None, primary.pk), "status": (old, Status.CLOSED)},
            at=at,
        )
        _event(primary, actor=actor, action="merged", changes={"merged": (None, dup.pk)}, at=at)
        if primary.customer_id is None and dup.customer_id:
            primary.customer_id = dup.customer_id
            primary.save(update_fields=["customer"])
    return primary

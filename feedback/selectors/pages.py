"""Reads the operator pages need beyond ``tickets``: the queue in order of urgency, one
page at a time by keyset; who can be picked as an assignee; a ticket's attachments and
merged duplicates; the canned replies; the customer's 360 summary.

**Urgency.** First the tickets whose SLA clock runs, by the due time of their earliest
running target — so the overdue (breached) ones come first, then the nearest due — then
by priority (crisis first) and age; after them the tickets whose clock does not run
(waiting on the customer, resolved, closed), newest first.

**At scale.** The running group is read from the SLA targets in due order through a
partial index on running targets, each ticket once (its earliest target), joined with
the viewer's filtered queue; the other group from the tickets' own created-at order. A
page reads ``limit + 1`` keys and then those tickets: no per-ticket subquery over the
whole queue, no OFFSET (the next page starts after the last row's key), and no COUNT(*):
the page knows whether more follow, which is what an operator working the queue needs
(a capped count still cost a scan whenever the filter was rare)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Case, Exists, F, IntegerField, OuterRef, Q, QuerySet, Value, When

from communities import selectors as sop_templates
from communities.models import TemplateKind
from core.errors import NotFound
from incentives import selectors as incentives_selectors
from segments import selectors as segments_selectors
from segments.models import Stage, Tier
from users import selectors as users_selectors

from ..models import PRIORITY_ORDER, Attachment, CannedReply, SlaTarget, Team, Ticket
from .tickets import ticket_queue, tickets_visible

PAGE_SIZE = 50
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: the running group's key: (due, priority rank, created, ticket), ascending
RUNNING_KEY = ("k_due", "k_priority", "k_created", "ticket_id")
#: the idle group's key: (created, ticket), descending
IDLE_KEY = ("created_at", "pk")


@dataclass(frozen=True)
class QueuePage:
    tickets: list[Ticket]
    next_cursor: str | None  # None: this is the queue's last page


def _running(matching: QuerySet[Ticket]) -> QuerySet[SlaTarget]:
    """The earliest running target of each matching ticket, with its sort key. A running
    target always has its due time (``SlaTarget``'s contract), so none is filtered on:
    the planner then estimates the running rows by their state alone."""
    running = SlaTarget.objects.filter(state=SlaTarget.State.RUNNING)
    earlier = running.filter(ticket_id=OuterRef("ticket_id")).filter(
        Q(due_at__lt=OuterRef("due_at")) | Q(due_at=OuterRef("due_at"), pk__lt=OuterRef("pk"))
    )
    rank = [When(ticket__priority=p, then=Value(i)) for i, p in enumerate(reversed(PRIORITY_ORDER))]
    return (
        running.filter(ticket__in=matching.order_by().values("pk"))
        .filter(~Exists(earlier))
        .annotate(
            k_due=F("due_at"),
            k_priority=Case(*rank, default=Value(len(PRIORITY_ORDER)), output_field=IntegerField()),
            k_created=F("ticket__created_at"),
        )
    )


def _idle(matching: QuerySet[Ticket]) -> QuerySet[Ticket]:
    running = SlaTarget.objects.filter(state=SlaTarget.State.RUNNING, ticket_id=OuterRef("pk"))
    return matching.filter(~Exists(running))


def _micros(at: datetime) -> int:
    delta = at - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _at(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def _cursor(group: str, key: tuple) -> str:
    return ".".join([group, *(str(_micros(v) if isinstance(v, datetime) else v) for v in key)])


def _parse_cursor(cursor: str | None) -> tuple[str, tuple] | None:
    """``("r", (due, rank, created, id))`` or ``("i", (created, id))`` from a cursor this
    module wrote; None for anything else (the queue then starts from the top)."""
    group, *parts = (cursor or "").split(".")
    if group not in ("r", "i") or len(parts) != (4 if group == "r" else 2) or not all(p.isdigit() for p in parts):
        return None
    numbers = [int(p) for p in parts]
    if any(n >= 2**63 for n in numbers):  # beyond a bigint: the database would refuse it
        return None
    try:
        if group == "r":
            return group, (_at(numbers[0]), numbers[1], _at(numbers[2]), numbers[3])
        return group, (_at(numbers[0]), numbers[1])
    except OverflowError:
        return None


def _after(fields: tuple, key: tuple, *, descending: bool = False) -> Q:
    """Rows whose key over ``fields`` comes after ``key`` (lexicographic)."""
    op = "lt" if descending else "gt"
    q, equal = Q(), {}
    for field, value in zip(fields, key, strict=True):
        q |= Q(**equal, **{f"{field}__{op}": value})
        equal[field] = value
    return q


def queue_page(*, viewer, filters: dict, after: str | None = None, limit: int = PAGE_SIZE) -> QueuePage:
    """One page of the viewer's queue (``tickets.ticket_queue``'s filters), most urgent
    first (see the module's docstring). At most four queries whatever the queue's size:
    the running group's keys, the idle group's keys (when the page reaches that group),
    the tickets and their SLA targets."""
    matching = ticket_queue(viewer=viewer, filters=filters)
    cursor = _parse_cursor(after)
    keys: list[tuple[str, int, tuple]] = []
    if cursor is None or cursor[0] == "r":
        running = _running(matching)
        if cursor is not None:
            running = running.filter(_after(RUNNING_KEY, cursor[1]))
        for row in running.order_by(*RUNNING_KEY).values_list(*RUNNING_KEY)[: limit + 1]:
            keys.append(("r", row[3], row))
    if len(keys) <= limit:
        idle = _idle(matching)
        if cursor is not None and cursor[0] == "i":
            idle = idle.filter(_after(IDLE_KEY, cursor[1], descending=True))
        order = [f"-{f}" for f in IDLE_KEY]
        for row in idle.order_by(*order).values_list(*IDLE_KEY)[: limit + 1 - len(keys)]:
            keys.append(("i", row[1], row))
    shown = keys[:limit]
    found = tickets_by_id(ticket_ids=[pk for _g, pk, _k in shown])
    return QueuePage(
        tickets=[found[pk] for _g, pk, _k in shown if pk in found],
        next_cursor=_cursor(shown[-1][0], shown[-1][2]) if len(keys) > limit else None,
    )


def tickets_by_id(*, ticket_ids: list[int]) -> dict[int, Ticket]:
    """Queue rows: the ticket with its customer, team, assignee and SLA targets (two
    queries). The body is not read: 50 long complaints are not needed to show subjects."""
    rows = (
        Ticket.objects.filter(pk__in=ticket_ids)
        .select_related("customer", "team", "assignee")
        .prefetch_related("sla_targets")
        .defer("body", "priority_basis")
    )
    return {t.pk: t for t in rows}


def teams_all() -> QuerySet[Team]:
    return Team.objects.order_by("code")


def team_rosters(*, teams: QuerySet[Team] | None = None) -> list[tuple[Team, list]]:
    """Each team with the people who can be assigned its tickets (lead first, then the
    members by name; active accounts only), in two queries."""
    teams = (teams if teams is not None else teams_all()).select_related("lead").prefetch_related("members")
    out = []
    for team in teams.order_by("code"):
        people = [team.lead] if team.lead is not None and team.lead.is_active else []
        people += sorted(
            (m for m in team.members.all() if m.is_active and m.pk != team.lead_id), key=lambda u: u.get_username()
        )
        out.append((team, people))
    return out


def ticket_attachments(*, ticket: Ticket) -> QuerySet[Attachment]:
    """The files the ticket (and any duplicate merged into it) was opened with; files of
    a message come with the conversation."""
    return Attachment.objects.filter(Q(ticket=ticket) | Q(ticket__merged_into=ticket), message__isnull=True).order_by(
        "created_at", "id"
    )


def attachment_get(*, viewer, attachment_id: int) -> Attachment:
    """An attachment of a ticket the viewer may see, or of a duplicate merged into one
    (404 otherwise: attachments are private)."""
    visible = tickets_visible(viewer=viewer).values("pk")
    found = (
        Attachment.objects.filter(pk=attachment_id)
        .filter(Q(ticket__in=visible) | Q(ticket__merged_into__in=visible))
        .first()
    )
    if found is None:
        raise NotFound(f"No attachment {attachment_id}.")
    return found


def tickets_merged(*, ticket: Ticket) -> QuerySet[Ticket]:
    return Ticket.objects.filter(merged_into=ticket).order_by("pk")


#: The SOP template types offered as canned replies in the queue.
CANNED_TEMPLATE_KINDS = (TemplateKind.TICKET_REPLY, TemplateKind.FAQ)
SOP_KEY = "sop-"


@dataclass(frozen=True)
class CannedOption:
    """One choice of the reply form's canned-reply select: an approved SOP template
    (``key`` ``"sop-<id>"``, its declared ``fields`` asked of the operator) or a legacy
    canned reply (``key`` its id, no fields)."""

    key: str
    name: str
    fields: tuple = ()
    sop: bool = False


def canned_replies() -> list[CannedOption]:
    """The approved SOP templates of the reply types first, then the legacy canned
    replies (kept working: their texts were never reviewed, so they are not turned into
    approved templates behind anyone's back)."""
    templates = [
        CannedOption(key=f"{SOP_KEY}{t.pk}", name=t.name, fields=tuple(t.approved_version.fields or ()), sop=True)
        for t in sop_templates.templates_usable(kinds=CANNED_TEMPLATE_KINDS)
    ]
    legacy = [
        CannedOption(key=str(r.pk), name=r.name) for r in CannedReply.objects.filter(is_active=True).order_by("name")
    ]
    return templates + legacy


def canned_template_get(*, template_id: int):
    """An approved, active SOP template of a reply type (404 otherwise)."""
    found = sop_templates.templates_usable(kinds=CANNED_TEMPLATE_KINDS).filter(pk=template_id).first()
    if found is None:
        raise NotFound(f"No approved reply template {template_id}.", code="unknown_template")
    return found


def canned_reply_get(*, reply_id: int) -> CannedReply:
    reply = CannedReply.objects.filter(pk=reply_id, is_active=True).first()
    if reply is None:
        raise NotFound(f"No active canned reply {reply_id}.")
    return reply


RECENT_ORDERS = 5


def customer_summary(*, customer) -> dict | None:
    """The customer's 360 in brief for a ticket: value tier and lifecycle stage (latest
    published scoring), points balance and level, the latest orders."""
    if customer is None:
        return None
    score = segments_selectors.customer_score(customer=customer)
    tier = getattr(score, "tier", "") or ""
    stage = getattr(score, "stage", "") or ""
    level = incentives_selectors.customer_level(customer=customer)
    return {
        "customer": customer,
        "tier": Tier(tier).label if tier in Tier.values else tier,
        "stage": Stage(stage).label if stage in Stage.values else stage,
        "points": incentives_selectors.points_summary(customer=customer),
        "level": level["name"] if level else "",
        "orders": list(users_selectors.customer_recent_orders(customer=customer, limit=RECENT_ORDERS)),
    }


def tickets_visible_ids(*, viewer, ticket_ids) -> set[int]:
    """Which of ``ticket_ids`` the viewer may see (a bulk action touches only those)."""
    return set(tickets_visible(viewer=viewer).filter(pk__in=list(ticket_ids)).values_list("pk", flat=True))

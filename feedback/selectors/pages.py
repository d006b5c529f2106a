"""Reads the operator pages need beyond ``tickets``: the queue in order of urgency, one
page at a time by keyset; who can be picked as an assignee; a ticket's attachments and
merged duplicates; the canned replies; the customer's 360 summary.

**Urgency.** Breached tickets first (a target escalated, stopped over its target, or
running past its due time), then the nearest due time of a running target (paused and
stopped ones last), then priority (crisis first), then the oldest. The order is computed
in SQL, so the page reads ``limit + 1`` rows whatever the queue's size, and the next page
starts after the last row's sort key (keyset): no OFFSET, no COUNT(*) of the whole queue."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Case, DateTimeField, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.errors import NotFound
from incentives import selectors as incentives_selectors
from segments import selectors as segments_selectors
from segments.models import Stage, Tier
from users import selectors as users_selectors

from ..models import PRIORITY_ORDER, Attachment, CannedReply, SlaTarget, Team, Ticket
from .tickets import ticket_queue, tickets_visible

PAGE_SIZE = 50
#: the queue says "1,000+" above this instead of counting every match
COUNT_CAP = 1000
#: the sort key of "no running target" (paused, stopped or none): after every real due time
NOT_DUE = datetime(9000, 1, 1, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ORDER = ("urgency_breach", "urgency_due", "urgency_priority", "created_at", "pk")


@dataclass(frozen=True)
class QueuePage:
    tickets: list[Ticket]
    next_cursor: str | None
    count: int
    count_capped: bool


def _urgency(qs: QuerySet[Ticket], now: datetime) -> QuerySet[Ticket]:
    targets = SlaTarget.objects.filter(ticket=OuterRef("pk"))
    breached = targets.filter(
        Q(breached_at__isnull=False)
        | Q(state=SlaTarget.State.BREACHED)
        | Q(state=SlaTarget.State.RUNNING, due_at__lte=now)
    )
    next_due = targets.filter(state=SlaTarget.State.RUNNING, due_at__isnull=False).order_by("due_at").values("due_at")
    rank = [When(priority=p, then=Value(i)) for i, p in enumerate(reversed(PRIORITY_ORDER))]
    return qs.annotate(
        urgency_breach=Case(When(Exists(breached), then=Value(0)), default=Value(1), output_field=IntegerField()),
        urgency_due=Coalesce(Subquery(next_due[:1]), Value(NOT_DUE), output_field=DateTimeField()),
        urgency_priority=Case(*rank, default=Value(len(PRIORITY_ORDER)), output_field=IntegerField()),
    )


def _micros(at: datetime) -> int:
    delta = at - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _at(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def cursor_of(ticket: Ticket) -> str:
    """The sort key of a queue row, as the next page's ``after``."""
    return ".".join(
        str(v)
        for v in (
            ticket.urgency_breach,
            _micros(ticket.urgency_due),
            ticket.urgency_priority,
            _micros(ticket.created_at),
            ticket.pk,
        )
    )


def _parse_cursor(cursor: str | None) -> tuple | None:
    """A cursor this module wrote, or None (a malformed one starts the queue from the top)."""
    parts = (cursor or "").split(".")
    if len(parts) != 5 or not all(p.isdigit() for p in parts):
        return None
    breach, due, priority, created, pk = (int(p) for p in parts)
    try:
        return breach, _at(due), priority, _at(created), pk
    except (OverflowError, OSError, ValueError):
        return None


def _after(key: tuple) -> Q:
    """Rows whose sort key is greater than ``key`` (lexicographic over ``ORDER``)."""
    q = Q()
    equal: dict = {}
    for field, value in zip(ORDER, key, strict=True):
        q |= Q(**equal, **{f"{field}__gt": value})
        equal[field] = value
    return q


def queue_page(
    *, viewer, filters: dict, after: str | None = None, limit: int = PAGE_SIZE, now: datetime | None = None
) -> QueuePage:
    """One page of the viewer's queue (``tickets.ticket_queue``'s filters), most urgent
    first. ``count`` is exact up to ``COUNT_CAP`` (``count_capped`` above it). Three
    queries: the capped count, the page, its SLA targets."""
    now = now or timezone.now()
    matching = ticket_queue(viewer=viewer, filters=filters)
    count = matching.order_by().values("pk")[: COUNT_CAP + 1].count()
    qs = _urgency(matching, now).order_by(*ORDER)
    key = _parse_cursor(after)
    if key is not None:
        qs = qs.filter(_after(key))
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return QueuePage(
        tickets=rows,
        next_cursor=cursor_of(rows[-1]) if more and rows else None,
        count=min(count, COUNT_CAP),
        count_capped=count > COUNT_CAP,
    )


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


def canned_replies() -> QuerySet[CannedReply]:
    return CannedReply.objects.filter(is_active=True).order_by("name")


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

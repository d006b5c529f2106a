"""Reads of tickets: who may see which queue, the queue with its filters, one ticket,
its conversation and history, and the app's (public) view of it.

**Queues.** Admins, and anyone with ``feedback.view_all_queues``, see every ticket.
Everyone else sees the tickets of the teams they are in or lead, and those assigned to
them; operators who may work tickets (``feedback.change_ticket``) also see the triage
queue: new tickets that have no team yet."""

from django.db.models import Exists, OuterRef, Q, QuerySet

from core.errors import NotFound

from ..models import OPEN_STATUSES, Message, SlaTarget, Status, Team, Ticket, TicketEvent

QUEUE_FILTERS = ("team", "assignee", "status", "priority", "category", "sla", "q", "customer")


def ticket_visible_q(viewer) -> Q | None:
    """None when the viewer sees everything; otherwise the tickets they may see."""
    if viewer.is_superuser or viewer.has_perm("feedback.view_all_queues"):
        return None
    # The viewer's teams as a subquery, not a join through the members table: the planner
    # then checks a ticket against a handful of team ids, and no ticket shows twice.
    teams = Team.objects.filter(Q(members=viewer) | Q(lead=viewer)).values("pk")
    q = Q(team__in=teams) | Q(assignee=viewer)
    if viewer.has_perm("feedback.change_ticket"):
        q |= Q(team__isnull=True, status=Status.NEW)
    return q


def tickets_visible(*, viewer) -> QuerySet[Ticket]:
    if not viewer.has_perm("feedback.view_ticket"):
        return Ticket.objects.none()
    q = ticket_visible_q(viewer)
    if q is None:
        return Ticket.objects.all()
    return Ticket.objects.filter(q)


def teams_visible(*, viewer) -> QuerySet[Team]:
    if ticket_visible_q(viewer) is None:
        return Team.objects.all()
    return Team.objects.filter(Q(members=viewer) | Q(lead=viewer)).distinct()


def _sla_filter(qs: QuerySet[Ticket], sla: str) -> QuerySet[Ticket]:
    # Exists rather than a join and DISTINCT: the queue pages by a key over the tickets,
    # and a semi-join lets the planner probe each ticket's two targets by index.
    targets = SlaTarget.objects.filter(ticket=OuterRef("pk"))
    if sla == "breached":
        return qs.filter(Exists(targets.filter(breached_at__isnull=False)))
    if sla == "warning":
        return qs.filter(
            Exists(targets.filter(warned_at__isnull=False, breached_at__isnull=True, state=SlaTarget.State.RUNNING))
        )
    if sla == "paused":
        return qs.filter(status=Status.WAITING)
    if sla == "on_track":
        return qs.exclude(Exists(targets.filter(Q(breached_at__isnull=False) | Q(warned_at__isnull=False))))
    return qs


def ticket_queue(*, viewer, filters: dict) -> QuerySet[Ticket]:
    """The queue as ``viewer`` may see it, filtered. ``status`` "open" (the default) means
    every status still someone's work; "all" means every status."""
    qs = tickets_visible(viewer=viewer)
    status = filters.get("status") or "open"
    if status == "open":
        qs = qs.filter(status__in=OPEN_STATUSES)
    elif status != "all":
        qs = qs.filter(status=status)
    if filters.get("team"):
        qs = qs.filter(team__code=filters["team"])
    if filters.get("assignee") == "me":
        qs = qs.filter(assignee=viewer)
    elif filters.get("assignee") == "none":
        qs = qs.filter(assignee__isnull=True)
    elif filters.get("assignee"):
        qs = qs.filter(assignee_id=filters["assignee"])
    for field in ("priority", "category"):
        if filters.get(field):
            qs = qs.filter(**{field: filters[field]})
    if filters.get("customer"):
        qs = qs.filter(customer__external_id=filters["customer"])
    if filters.get("q"):
        term = filters["q"].strip()
        qs = qs.filter(Q(subject__icontains=term) | (Q(pk=int(term)) if term.isdigit() else Q()))
    qs = _sla_filter(qs, filters.get("sla") or "")
    return qs.select_related("customer", "team", "assignee").prefetch_related("sla_targets")


def ticket_get(*, viewer, ticket_id: int) -> Ticket:
    """One ticket the viewer may see (404 otherwise: not even its existence leaks)."""
    ticket = (
        tickets_visible(viewer=viewer)
        .select_related("customer", "team", "assignee", "merged_into")
        .filter(pk=ticket_id)
        .first()
    )
    if ticket is None:
        raise NotFound(f"No ticket {ticket_id}.")
    return ticket


def ticket_by_id(*, ticket_id: int) -> Ticket:
    """A ticket for the product backend's key (it sees every ticket)."""
    ticket = Ticket.objects.select_related("customer", "merged_into").filter(pk=ticket_id).first()
    if ticket is None:
        raise NotFound(f"No ticket {ticket_id}.")
    return ticket


def ticket_conversation(*, ticket: Ticket, include_notes: bool) -> QuerySet[Message]:
    """The ticket's messages, with those of tickets merged into it, oldest first.
    Internal notes only when ``include_notes`` (operators; never the API)."""
    qs = Message.objects.filter(Q(ticket=ticket) | Q(ticket__merged_into=ticket))
    if not include_notes:
        qs = qs.exclude(kind=Message.Kind.NOTE)
    return qs.select_related("author").prefetch_related("attachments").order_by("created_at", "id")


def ticket_history(*, ticket: Ticket) -> QuerySet[TicketEvent]:
    return TicketEvent.objects.filter(Q(ticket=ticket) | Q(ticket__merged_into=ticket)).select_related("actor")


def customer_tickets(*, customer) -> QuerySet[Ticket]:
    return Ticket.objects.filter(customer=customer).prefetch_related("sla_targets").order_by("-created_at", "-id")

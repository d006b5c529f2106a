"""REST API v1: the app's side of a ticket — open one, read it (public replies only,
never internal notes), list a customer's, and post the customer's reply."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from rest_framework.response import Response
from rest_framework.views import APIView

from core.models import ApiKey
from core.pagination import CheckedCursorPagination
from core.permissions import ScopePermission
from core.schema import error_responses
from core.validation import CleanTextModel, validate_body
from users.rows import ExternalId
from users.selectors import customer_get, customer_ref

from .models import Category, Difficulty, Impact, Message, Priority, Severity, Source, Ticket
from .selectors import sla as sla_selectors
from .selectors import tickets as selectors
from .services import tickets as services

IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.:\-]+$")]
Text = Annotated[str, StringConstraints(max_length=services.MAX_BODY)]


class AttachmentIn(CleanTextModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    content_type: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    content_base64: str = Field(description="The file, base64-encoded; at most FEEDBACK_ATTACHMENT_MAX_BYTES decoded.")


class TicketIn(CleanTextModel):
    model_config = ConfigDict(extra="forbid")
    customer: ExternalId | None = Field(None, description="The customer's external_id; null when unknown.")
    source: Literal[tuple(Source.values)] = Source.APP  # type: ignore[valid-type]
    category: Literal[tuple(Category.values)]  # type: ignore[valid-type]
    priority: Literal[tuple(Priority.values)] | None = Field(  # type: ignore[valid-type]
        None, description="Absent: the priority model decides (matrix, then the VIP rule)."
    )
    impact: Literal[tuple(Impact.values)] = Impact.ONE  # type: ignore[valid-type]
    severity: Literal[tuple(Severity.values)] = Severity.MINOR  # type: ignore[valid-type]
    difficulty: Literal[tuple(Difficulty.values)] = Difficulty.EASY  # type: ignore[valid-type]
    subject: Annotated[str, StringConstraints(max_length=services.MAX_SUBJECT)]
    body: Text
    idempotency_key: IdempotencyKey | None = Field(
        None, description="A retry with the same key opens no second ticket."
    )
    attachments: Annotated[list[AttachmentIn], Field(max_length=10)] = []


class CustomerMessageIn(CleanTextModel):
    model_config = ConfigDict(extra="forbid")
    body: Text
    idempotency_key: IdempotencyKey
    attachments: Annotated[list[AttachmentIn], Field(max_length=10)] = []


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SlaTargetOut(_Out):
    target: Literal["first_response", "resolution"]
    target_seconds: int = Field(description="The target in counted seconds (business time when business_hours).")
    business_hours: bool
    due_at: datetime | None = Field(description="When the target falls due; null while paused or stopped.")
    seconds_left: int = Field(description="Counted seconds until due; negative when overdue.")
    state: Literal["running", "paused", "met", "breached"]
    warned: bool
    breached: bool
    paused_seconds: int = Field(description="Wall-clock seconds spent waiting on the customer.")


class MessageOut(_Out):
    id: int
    author: Literal["customer", "team"]
    body: str
    created_at: datetime
    attachments: list[str] = Field(description="File names.")


class TicketOut(_Out):
    id: int
    customer: str | None
    source: str
    category: str
    priority: str
    priority_basis: dict = Field(
        description="How the priority was reached: given, matrix or default, then vip, escalations."
    )
    subject: str
    body: str
    status: Literal["new", "triaged", "in_progress", "waiting_on_customer", "resolved", "closed"]
    merged_into: int | None
    created_at: datetime
    resolved_at: datetime | None
    first_response_due: datetime | None
    resolution_due: datetime | None
    sla: list[SlaTargetOut] = Field(description="Both targets, tracked apart and shown together.")
    messages: list[MessageOut] = Field(description="Public replies and the customer's messages; never internal notes.")


class TicketSummaryOut(_Out):
    id: int
    category: str
    priority: str
    subject: str
    status: str
    created_at: datetime
    first_response_due: datetime | None
    resolution_due: datetime | None


class CustomerTicketsOut(_Out):
    next: str | None
    previous: str | None
    results: list[TicketSummaryOut]


class MessagePostedOut(_Out):
    message: MessageOut
    ticket: TicketSummaryOut


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat() if at else None


def _sla(ticket: Ticket, now: datetime) -> list[dict]:
    return [{**row, "due_at": _iso(row["due_at"])} for row in sla_selectors.sla_state(ticket=ticket, now=now)]


def _dues(sla: list[dict]) -> dict:
    due = {row["target"]: row["due_at"] for row in sla}
    return {"first_response_due": due.get("first_response"), "resolution_due": due.get("resolution")}


def message_out(m: Message) -> dict:
    return {
        "id": m.pk,
        "author": "customer" if m.kind == Message.Kind.CUSTOMER else "team",
        "body": m.body,
        "created_at": _iso(m.created_at),
        "attachments": [a.name for a in m.attachments.all()],
    }


def ticket_summary(ticket: Ticket, now: datetime) -> dict:
    return {
        "id": ticket.pk,
        "category": ticket.category,
        "priority": ticket.priority,
        "subject": ticket.subject,
        "status": ticket.status,
        "created_at": _iso(ticket.created_at),
        **_dues(_sla(ticket, now)),
    }


def ticket_out(ticket: Ticket, now: datetime) -> dict:
    sla = _sla(ticket, now)
    return {
        "id": ticket.pk,
        "customer": ticket.customer.external_id if ticket.customer_id else None,
        "source": ticket.source,
        "category": ticket.category,
        "priority": ticket.priority,
        "priority_basis": ticket.priority_basis,
        "subject": ticket.subject,
        "body": ticket.body,
        "status": ticket.status,
        "merged_into": ticket.merged_into_id,
        "created_at": _iso(ticket.created_at),
        "resolved_at": _iso(ticket.resolved_at),
        **_dues(sla),
        "sla": sla,
        "messages": [message_out(m) for m in selectors.ticket_conversation(ticket=ticket, include_notes=False)],
    }


def _attachments(items: list[AttachmentIn]) -> list[services.AttachmentIn]:
    return [
        services.attachment_from_base64(name=a.name, content_type=a.content_type, content_base64=a.content_base64)
        for a in items
    ]


def _ticket_for(request, ticket_id: int) -> Ticket:
    """A key sees every ticket; an operator's session only the queues they may see."""
    if isinstance(request.auth, ApiKey):
        return selectors.ticket_by_id(ticket_id=ticket_id)
    return selectors.ticket_get(viewer=request.user, ticket_id=ticket_id)


class TicketCreateApi(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"POST": "tickets:write"}
    required_perms = {"POST": "feedback.add_ticket"}

    @extend_schema(
        request=TicketIn,
        responses={201: TicketOut, **error_responses(400, 404, 409)},
        summary="Open a feedback ticket (idempotent by an optional idempotency_key)",
    )
    def post(self, request):
        body = validate_body(TicketIn, request.data)
        customer = customer_ref(external_id=body.customer) if body.customer else None
        opened = services.ticket_open(
            customer=customer,
            source=body.source,
            category=body.category,
            priority=body.priority,
            impact=body.impact,
            severity=body.severity,
            difficulty=body.difficulty,
            subject=body.subject,
            body=body.body,
            attachments=_attachments(body.attachments),
            idempotency_key=f"api:{body.idempotency_key}" if body.idempotency_key else None,
            actor=request.user,
        )
        headers = {"Idempotent-Replayed": "true"} if opened.replayed else {}
        return Response(ticket_out(opened.ticket, timezone.now()), status=201, headers=headers)


class TicketDetailApi(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"GET": "tickets:read"}
    required_perms = {"GET": "feedback.view_ticket"}

    @extend_schema(responses={200: TicketOut, **error_responses(404)}, summary="The app's view of one ticket")
    def get(self, request, ticket_id: int):
        return Response(ticket_out(_ticket_for(request, ticket_id), timezone.now()))


class TicketCursor(CheckedCursorPagination):
    ordering = "-id"
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class CustomerTicketsApi(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"GET": "tickets:read"}
    required_perms = {"GET": "feedback.view_ticket"}

    @extend_schema(
        parameters=[OpenApiParameter("cursor", str), OpenApiParameter("page_size", int)],
        responses={200: CustomerTicketsOut, **error_responses(404)},
        summary="A customer's tickets, newest first",
    )
    def get(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        qs = selectors.customer_tickets(customer=customer)
        if not isinstance(request.auth, ApiKey):
            qs = qs.filter(pk__in=selectors.tickets_visible(viewer=request.user).values("pk"))
        paginator = TicketCursor()
        page = paginator.paginate_queryset(qs, request, view=self)
        now = timezone.now()
        return Response(
            {
                "next": paginator.get_next_link(),
                "previous": paginator.get_previous_link(),
                "results": [ticket_summary(t, now) for t in page],
            }
        )


class TicketMessageApi(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"POST": "tickets:write"}
    required_perms = {"POST": "feedback.reply_ticket"}

    @extend_schema(
        request=CustomerMessageIn,
        responses={201: MessagePostedOut, **error_responses(400, 404, 409)},
        summary="The customer's reply from the app (idempotent by key); resumes a ticket waiting on them",
    )
    def post(self, request, ticket_id: int):
        body = validate_body(CustomerMessageIn, request.data)
        ticket = _ticket_for(request, ticket_id)
        posted = services.ticket_customer_reply(
            ticket=ticket,
            body=body.body,
            idempotency_key=body.idempotency_key,
            attachments=_attachments(body.attachments),
        )
        ticket.refresh_from_db()
        headers = {"Idempotent-Replayed": "true"} if posted.replayed else {}
        return Response(
            {"message": message_out(posted.message), "ticket": ticket_summary(ticket, timezone.now())},
            status=201,
            headers=headers,
        )

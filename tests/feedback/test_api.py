"""The app's side of a ticket over REST: open (idempotent), read (public replies only),
a customer's tickets, the customer's reply; scopes; bad input refused with nothing written."""

import base64

import pytest
from rest_framework.test import APIClient

from feedback.api import CustomerTicketsOut, MessagePostedOut, TicketOut
from feedback.models import Message, Status, Team, Ticket
from feedback.services import tickets as services
from tests.users.factories import CustomerFactory

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


@pytest.fixture
def customer(db):
    return CustomerFactory(external_id="c-1")


def _post(api, **body):
    return api.post(
        "/api/v1/tickets",
        {"customer": "c-1", "category": "complaint", "subject": "Crash", "body": "On start", **body},
        format="json",
    )


@pytest.mark.django_db
class TestOpen:
    def test_opens_and_answers_the_spec_shape(self, api, customer):
        r = _post(api, idempotency_key="t-1")
        assert r.status_code == 201, r.content
        body = TicketOut.model_validate(r.json()).model_dump()
        assert body["status"] == "new"
        assert body["customer"] == "c-1"
        assert body["first_response_due"] is not None and body["resolution_due"] is not None
        assert {t["target"] for t in body["sla"]} == {"first_response", "resolution"}
        assert body["priority_basis"]["matrix"]["priority"] == body["priority"]

    def test_a_retry_with_the_key_opens_one_ticket(self, api, customer):
        first = _post(api, idempotency_key="t-1")
        again = _post(api, idempotency_key="t-1")
        assert (again.status_code, again.json()["id"]) == (201, first.json()["id"])
        assert again.headers["Idempotent-Replayed"] == "true"
        assert Ticket.objects.count() == 1

    def test_attachment_in_base64(self, api, customer, settings, tmp_path):
        settings.MEDIA_ROOT = tmp_path
        att = {"name": "s.png", "content_type": "image/png", "content_base64": base64.b64encode(PNG).decode()}
        r = _post(api, attachments=[att])
        assert r.status_code == 201, r.content
        assert Ticket.objects.get().attachments.get().size == len(PNG)

    @pytest.mark.parametrize(
        ("body", "status", "code"),
        [
            ({"customer": "nobody"}, 404, "not_found"),
            ({"subject": ""}, 400, "blank"),
            ({"body": "   "}, 400, "blank"),
            ({"category": "rant"}, 400, "invalid"),
            ({"priority": "asap"}, 400, "invalid"),
            ({"extra": 1}, 400, "invalid"),
            (
                {
                    "attachments": [
                        {"name": "a.exe", "content_type": "application/x-msdownload", "content_base64": "TVo="}
                    ]
                },
                400,
                "attachment_type_not_allowed",
            ),
            (
                {"attachments": [{"name": "a.png", "content_type": "image/png", "content_base64": "!!"}]},
                400,
                "attachment_invalid",
            ),
        ],
    )
    def test_bad_input(self, api, customer, body, status, code):
        r = _post(api, **body)
        assert r.status_code == status, r.content
        assert r.json()["error"]["code"] == code
        assert Ticket.objects.count() == 0

    def test_oversized_attachment(self, api, customer, settings):
        settings.FEEDBACK_ATTACHMENT_MAX_BYTES = 10
        att = {"name": "big.txt", "content_type": "text/plain", "content_base64": base64.b64encode(b"x" * 11).decode()}
        r = _post(api, attachments=[att])
        assert (r.status_code, r.json()["error"]["code"]) == (400, "attachment_too_large")
        assert Ticket.objects.count() == 0

    def test_scope_is_required(self, make_api, customer):
        assert _post(make_api(["tickets:read"])).status_code == 403
        assert _post(make_api(["tickets:write"])).status_code == 201


@pytest.mark.django_db
class TestRead:
    def test_never_shows_internal_notes(self, api, customer, make_user):
        op = make_user("operator", username="op")
        ticket = services.ticket_open(customer=customer, category="question", subject="S", body="B").ticket
        services.ticket_reply(ticket=ticket, body="PUBLIC reply", actor=op)
        services.ticket_note(ticket=ticket, body="SECRET note", actor=op)
        r = api.get(f"/api/v1/tickets/{ticket.pk}")
        assert r.status_code == 200
        out = TicketOut.model_validate(r.json())
        assert [m.body for m in out.messages] == ["PUBLIC reply"]
        assert b"SECRET" not in r.content
        first = next(t for t in out.sla if t.target == "first_response")
        assert first.state == "met"

    def test_unknown_ticket_is_404(self, api, db):
        r = api.get("/api/v1/tickets/999")
        assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")

    def test_read_scope(self, make_api, customer):
        ticket = services.ticket_open(customer=customer, category="question", subject="S", body="B").ticket
        assert make_api(["tickets:write"]).get(f"/api/v1/tickets/{ticket.pk}").status_code == 403
        assert make_api(["tickets:read"]).get(f"/api/v1/tickets/{ticket.pk}").status_code == 200

    def test_customer_tickets_newest_first(self, api, customer):
        ids = [
            services.ticket_open(customer=customer, category="question", subject=f"S{i}", body="B").ticket.pk
            for i in range(3)
        ]
        services.ticket_open(customer=CustomerFactory(), category="question", subject="other", body="B")
        r = api.get("/api/v1/customers/c-1/tickets")
        assert r.status_code == 200
        out = CustomerTicketsOut.model_validate(r.json())
        assert [t.id for t in out.results] == ids[::-1]
        assert api.get("/api/v1/customers/nobody/tickets").status_code == 404


@pytest.mark.django_db
class TestCustomerReply:
    def _waiting(self, customer, make_user):
        op = make_user("operator", username="op")
        ticket = services.ticket_open(customer=customer, category="question", subject="S", body="B").ticket
        services.ticket_reply(ticket=ticket, body="Which phone?", actor=op, then="wait")
        return ticket

    def test_resumes_a_waiting_ticket_once_per_key(self, api, customer, make_user):
        ticket = self._waiting(customer, make_user)
        url = f"/api/v1/tickets/{ticket.pk}/messages"
        r = api.post(url, {"body": "iPhone 15", "idempotency_key": "r-1"}, format="json")
        assert r.status_code == 201, r.content
        out = MessagePostedOut.model_validate(r.json())
        assert (out.ticket.status, out.message.author) == ("in_progress", "customer")
        again = api.post(url, {"body": "iPhone 15", "idempotency_key": "r-1"}, format="json")
        assert again.json()["message"]["id"] == out.message.id
        assert Message.objects.filter(kind="customer").count() == 1

    def test_reply_to_a_closed_ticket_is_refused(self, api, customer):
        ticket = services.ticket_open(customer=customer, category="question", subject="S", body="B").ticket
        services.ticket_transition(ticket=ticket, action="resolve")
        services.ticket_transition(ticket=ticket, action="close")
        r = api.post(f"/api/v1/tickets/{ticket.pk}/messages", {"body": "hi", "idempotency_key": "r"}, format="json")
        assert (r.status_code, r.json()["error"]["code"]) == (409, "ticket_closed")
        assert Message.objects.count() == 0

    @pytest.mark.parametrize(
        "body", [{"body": "", "idempotency_key": "r"}, {"body": "hi"}, {"body": "hi", "idempotency_key": "a b"}]
    )
    def test_bad_reply(self, api, customer, body):
        ticket = services.ticket_open(customer=customer, category="question", subject="S", body="B").ticket
        r = api.post(f"/api/v1/tickets/{ticket.pk}/messages", body, format="json")
        assert r.status_code == 400
        assert Message.objects.count() == 0


@pytest.mark.django_db
class TestOperatorSession:
    def test_a_viewer_cannot_reply(self, make_user, customer):
        ticket = services.ticket_open(customer=customer, category="question", subject="S", body="B").ticket
        client = APIClient()
        client.force_login(make_user("viewer", username="v"))
        r = client.post(f"/api/v1/tickets/{ticket.pk}/messages", {"body": "x", "idempotency_key": "k"}, format="json")
        assert r.status_code == 403
        assert Message.objects.count() == 0

    def test_an_operator_sees_only_their_teams_tickets(self, make_user, customer):
        op = make_user("operator", username="op")
        Team.objects.get(code="tech").members.add(op)
        mine = services.ticket_open(customer=customer, category="complaint", subject="bug", body="B").ticket
        other = services.ticket_open(customer=customer, category="suggestion", subject="idea", body="B").ticket
        services.ticket_transition(ticket=other, action="triage")  # product's, and out of triage
        client = APIClient()
        client.force_login(op)
        assert client.get(f"/api/v1/tickets/{mine.pk}").status_code == 200
        assert client.get(f"/api/v1/tickets/{other.pk}").status_code == 404
        listed = client.get("/api/v1/customers/c-1/tickets").json()["results"]
        assert [t["id"] for t in listed] == [mine.pk]
        assert Ticket.objects.get(pk=mine.pk).status == Status.NEW

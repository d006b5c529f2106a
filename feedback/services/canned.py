"""Canned replies: a reply template filled in for one ticket.

Two sources. **SOP templates** (``communities``) of the types "ticket reply" and "FAQ
reply" with an approved version — versioned, reviewed by a second person, sandboxed —
are the canned replies to write from now on: ``canned_template_render`` fills in the
customer's variables (``{{ nickname }}``, ``{{ points }}``, ``{{ level }}``…), the
ticket's (``{{ ticket }}``, ``{{ subject }}``), the operator's name, and the fields the
template declares, which the reply form asks of the operator (checked by type). The
text is plain (``output=TEXT``): the reply is stored as text and escaped where shown.

**Legacy canned replies** (``CannedReply``, below) keep working as they were: their
texts were never reviewed, so they are not turned into approved templates behind
anyone's back; an admin rewrites them as SOP templates and deactivates them.

The legacy body is Django template syntax rendered by an engine of its own: autoescape off
(the result is the plain text of a reply, not HTML), no template loaders and no tag
libraries beyond the built-ins (``{% include %}`` or ``{% load %}`` fail), and only four
plain-text variables in the context, so a template cannot reach a model's methods. A
variable the context does not have is an error rather than an empty string: a typo in
``{{ custmer_name }}`` would otherwise send "Dear ," to a customer."""

from django.template import Context, Engine, TemplateDoesNotExist, TemplateSyntaxError
from django.utils.translation import gettext as _

from communities import selectors as sop_templates
from core.errors import ApplicationError

from ..models import CannedReply, Ticket

VARIABLES = ("customer_name", "ticket_id", "subject", "operator_name")


class _Missing(str):
    """``string_if_invalid`` that records the names it stands in for (Django formats it
    with the variable's name when it contains ``%s``)."""

    def __new__(cls):
        value = super().__new__(cls, "%s")
        value.names = []
        return value

    def __mod__(self, name):
        self.names.append(str(name))
        return ""


def _operator_name(operator) -> str:
    if operator is None:
        return ""
    return (operator.get_full_name() or "").strip() or operator.get_username()


def canned_reply_render(*, reply: CannedReply, ticket: Ticket, operator) -> str:
    """The reply's text for ``ticket``, written by ``operator``. Raises
    ``ApplicationError`` (``canned_reply_invalid``) when the body does not parse or uses
    a variable other than ``VARIABLES``."""
    missing = _Missing()
    engine = Engine(autoescape=False, string_if_invalid=missing, loaders=[], libraries={})
    context = {
        "customer_name": str(ticket.customer) if ticket.customer_id else _("customer"),
        "ticket_id": str(ticket.pk),
        "subject": ticket.subject,
        "operator_name": _operator_name(operator),
    }
    try:
        text = engine.from_string(reply.body).render(Context(context, autoescape=False))
    except (TemplateSyntaxError, TemplateDoesNotExist, ValueError, LookupError) as exc:
        raise ApplicationError(
            _("The canned reply “%(name)s” cannot be used: %(problem)s")
            % {"name": reply.name, "problem": exc.args[0] if exc.args else exc},
            code="canned_reply_invalid",
            details={"canned_reply": reply.pk},
        ) from None
    if missing.names:
        raise ApplicationError(
            _("The canned reply “%(name)s” uses unknown variables: %(unknown)s (known: %(known)s).")
            % {
                "name": reply.name,
                "unknown": ", ".join(sorted(set(missing.names))),
                "known": ", ".join(VARIABLES),
            },
            code="canned_reply_invalid",
            details={"canned_reply": reply.pk, "unknown": sorted(set(missing.names))},
        )
    return text.strip()


def canned_template_render(*, template, ticket: Ticket, operator, fields: dict | None = None) -> str:
    """An approved SOP template's text for ``ticket``: the customer's variables, the
    ticket's number and subject, the operator's name, and ``fields`` (the declared
    fields the operator filled in). Raises ``ApplicationError``: ``invalid_fields``
    (``details`` = ``{field: [reason]}``) or ``template_not_approved``."""
    return sop_templates.template_render(
        template,
        customer=ticket.customer if ticket.customer_id else None,
        fields=fields or {},
        operator=operator,
        extra={"ticket": str(ticket.pk), "subject": ticket.subject},
        output=sop_templates.TEXT,
    )

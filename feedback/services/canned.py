"""Canned replies: an admin-written template filled in for one ticket.

The body is Django template syntax rendered by an engine of its own: autoescape off
(the result is the plain text of a reply, not HTML), no template loaders and no tag
libraries beyond the built-ins (``{% include %}`` or ``{% load %}`` fail), and only four
plain-text variables in the context, so a template cannot reach a model's methods. A
variable the context does not have is an error rather than an empty string: a typo in
``{{ custmer_name }}`` would otherwise send "Dear ," to a customer."""

from django.template import Context, Engine, TemplateDoesNotExist, TemplateSyntaxError
from django.utils.translation import gettext as _

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

"""Writes of CSAT and NPS: the one-click CSAT invitation after a resolution, a customer's
CSAT answer, NPS surveys (create, send to a segment) and a customer's NPS answer.

**Emails** go through Django's email backend (``EMAIL_BACKEND``: the console in the
demo, SMTP by settings), always when the surrounding transaction commits: a rollback
sends nothing. A mail server that fails is logged and does not undo the write that
asked for the email (``robust`` on-commit callbacks). A customer is emailed only with an
email address, email consent and without do-not-contact. Customers carry no language
of their own yet: emails are written in ``FEEDBACK_CUSTOMER_LANGUAGE`` (zh-hans).

**Links** are signed (``feedback.selectors.satisfaction``): a CSAT link holds the
ticket id and expires after ``FEEDBACK_CSAT_MAX_AGE_DAYS`` (14) days, an NPS link the
survey and customer ids and expires after ``FEEDBACK_NPS_MAX_AGE_DAYS`` (30)."""

from collections.abc import Sequence
from datetime import datetime

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from core.errors import ApplicationError, Conflict, NotFound
from segments.selectors import segment_members
from users.models import Customer

from ..models import CsatResponse, NpsResponse, NpsSurvey, Status, Ticket
from ..selectors.satisfaction import (
    CSAT_SALT,
    NPS_SALT,
    LinkSigner,
    csat_invitation,
    csat_max_age,
    nps_invitation,
    nps_max_age,
)

MAX_COMMENT = 2000
MAX_NAME = 120
MAX_QUESTION = 300
#: customers read (and emailed over one connection) per chunk when an NPS survey goes out
NPS_CHUNK = 500


def customer_language(customer: Customer | None) -> str:
    return getattr(settings, "FEEDBACK_CUSTOMER_LANGUAGE", "zh-hans")


def customer_emailable(customer: Customer | None) -> bool:
    return bool(
        customer is not None
        and "@" in (customer.email or "")
        and customer.consent_email
        and not customer.do_not_contact
    )


def _absolute(path: str) -> str:
    return settings.OPS_SITE_URL.rstrip("/") + path


def _message(*, template: str, context: dict, to: str, language: str) -> EmailMultiAlternatives:
    """A plain-text email with an HTML alternative, from ``templates/feedback/email/``."""
    with translation.override(language):
        subject = " ".join(render_to_string(f"feedback/email/{template}_subject.txt", context).split())
        text = render_to_string(f"feedback/email/{template}_body.txt", context)
        html = render_to_string(f"feedback/email/{template}_body.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [to])
    message.attach_alternative(html, "text/html")
    return message


def _on_commit(func, *args) -> None:
    """``func(*args)`` once the transaction commits (at once outside one). Robust: a
    failure (the mail server is down) is logged and does not undo what committed."""

    def call():
        return func(*args)

    call.__qualname__ = func.__qualname__  # what Django's log line names
    transaction.on_commit(call, robust=True)


def _send(messages: Sequence[EmailMultiAlternatives]) -> int:
    # One connection for the lot (an SMTP session per chunk, not per recipient).
    with get_connection() as connection:
        return connection.send_messages(list(messages)) or 0


def _clean_comment(comment: str | None) -> str:
    text = (comment or "").strip()
    if len(text) > MAX_COMMENT:
        raise ApplicationError(
            _("The comment is longer than %(limit)s characters.") % {"limit": MAX_COMMENT},
            code="too_long",
            details={"comment": "too_long"},
        )
    return text


def _clean_score(score, *, low: int, high: int) -> int:
    if isinstance(score, str) and score.strip().isdigit():
        score = int(score)
    if type(score) is not int or not low <= score <= high:
        raise ApplicationError(
            _("The score must be a whole number from %(low)s to %(high)s.") % {"low": low, "high": high},
            code="invalid_score",
            details={"score": "invalid"},
        )
    return score


# --- CSAT ---------------------------------------------------------------------------


def csat_token(*, ticket_id: int, now: datetime | None = None) -> str:
    return LinkSigner(salt=CSAT_SALT, now=now).sign_object({"t": ticket_id})


def csat_url(*, token: str, score: int | None = None) -> str:
    path = reverse("survey:csat", args=[token])
    return _absolute(f"{path}?score={score}" if score else path)


def csat_invite(*, ticket: Ticket, now: datetime | None = None) -> str | None:
    """Emails the ticket's customer a signed one-click CSAT link (five links, one per
    score, each pre-selecting it on the page), sent when the current transaction
    commits. Returns the link, or None when the customer is not to be emailed or the
    ticket's survey has already been answered."""
    customer = ticket.customer
    if not customer_emailable(customer) or CsatResponse.objects.filter(ticket_id=ticket.pk).exists():
        return None
    token = csat_token(ticket_id=ticket.pk, now=now)
    message = _message(
        template="csat",
        context={
            "ticket": ticket,
            "customer": customer,
            "link": csat_url(token=token),
            "score_links": [(score, csat_url(token=token, score=score)) for score in range(1, 6)],
            "max_age_days": csat_max_age().days,
        },
        to=customer.email,
        language=customer_language(customer),
    )
    _on_commit(_send, [message])
    return csat_url(token=token)


def _csat_invite_committed(ticket_id: int) -> None:
    # Read again after the commit: the email says what was committed, and a ticket
    # reopened in the meantime is not asked about.
    ticket = Ticket.objects.select_related("customer").filter(pk=ticket_id, status=Status.RESOLVED).first()
    if ticket is not None:
        csat_invite(ticket=ticket)


def csat_invite_on_commit(*, ticket: Ticket) -> None:
    """What the ticket service calls when a ticket is resolved, inside its transaction:
    the invitation is built and sent once that transaction commits (never on a rollback)."""
    _on_commit(_csat_invite_committed, ticket.pk)


def csat_record(*, token: str, score, comment: str = "", now: datetime | None = None) -> CsatResponse:
    """A customer's answer from the CSAT link: one per ticket. Refuses a forged
    (``invalid_link``), expired (``link_expired``) or already answered
    (``already_answered``) link and a score outside 1–5 (``invalid_score``); nothing is
    written on a refusal."""
    ticket = csat_invitation(token=token, now=now)
    score = _clean_score(score, low=1, high=5)
    comment = _clean_comment(comment)
    try:
        with transaction.atomic():
            return CsatResponse.objects.create(
                ticket=ticket, score=score, comment=comment, team_id=ticket.team_id, answered_at=now or timezone.now()
            )
    except IntegrityError:  # the same link answered twice at once: the other answer won
        raise Conflict(_("This ticket's survey has already been answered."), code="already_answered") from None


# --- NPS ----------------------------------------------------------------------------


def _unknown_segment(slug: str) -> ApplicationError:
    return ApplicationError(
        _("Unknown segment %(slug)r.") % {"slug": slug}, code="unknown_segment", details={"segment_slug": slug}
    )


def _members(slug: str):
    """The segment's members (built-in or custom segments; ``segments.selectors``)."""
    try:
        return segment_members(slug=slug)
    except NotFound:
        raise _unknown_segment(slug) from None


def nps_survey_create(*, name: str, segment_slug: str, question: str = "", actor=None) -> NpsSurvey:
    """A survey of one segment, not sent yet. Refuses an empty or long name or question
    and a segment that does not exist (``unknown_segment``)."""
    name, question, slug = (name or "").strip(), (question or "").strip(), (segment_slug or "").strip()
    if not name:
        raise ApplicationError(_("The name must not be empty."), code="blank", details={"name": "blank"})
    if len(name) > MAX_NAME or len(question) > MAX_QUESTION:
        field = "name" if len(name) > MAX_NAME else "question"
        raise ApplicationError(
            _("The %(field)s is too long.") % {"field": field}, code="too_long", details={field: "too_long"}
        )
    if not slug:
        raise _unknown_segment(slug)
    _members(slug)
    return NpsSurvey.objects.create(
        name=name, segment_slug=slug, question=question, created_by=actor if getattr(actor, "pk", None) else None
    )


def nps_token(*, survey_id: int, customer_id: int, now: datetime | None = None) -> str:
    return LinkSigner(salt=NPS_SALT, now=now).sign_object({"s": survey_id, "c": customer_id})


def nps_url(*, token: str, score: int | None = None) -> str:
    path = reverse("survey:nps", args=[token])
    return _absolute(f"{path}?score={score}" if score is not None else path)


def _nps_send_chunk(survey_id: int, name: str, question: str, recipients: list[tuple], at: datetime) -> int:
    """Builds and sends one chunk's emails over one connection (after the commit). A
    blank ``question`` is the standard one, written by the template in the email's language."""
    messages = []
    for customer_id, email, customer_name in recipients:
        token = nps_token(survey_id=survey_id, customer_id=customer_id, now=at)
        messages.append(
            _message(
                template="nps",
                context={
                    "name": name,
                    "question": question,
                    "customer_name": customer_name,
                    "link": nps_url(token=token),
                    "score_links": [(score, nps_url(token=token, score=score)) for score in range(11)],
                    "max_age_days": nps_max_age().days,
                },
                to=email,
                language=customer_language(None),
            )
        )
    return _send(messages)


def nps_survey_send(*, survey: NpsSurvey, now: datetime | None = None, chunk_size: int = NPS_CHUNK) -> NpsSurvey:
    """Sends the survey to its segment's members who may be emailed: one signed link
    each. Members are read in chunks by id, and each chunk's emails go out over one
    connection once the transaction commits. Records ``sent_at`` and ``sent_count``;
    a second send is refused (``already_sent``), however many run at once."""
    at = now or timezone.now()
    with transaction.atomic():
        # The claim is one conditional UPDATE: of two concurrent sends, one matches.
        if not NpsSurvey.objects.filter(pk=survey.pk, sent_at__isnull=True).update(sent_at=at):
            raise Conflict(_("This survey has already been sent."), code="already_sent")
        reachable = (
            _members(survey.segment_slug)
            .filter(consent_email=True, do_not_contact=False, email__contains="@")
            .order_by("pk")
        )
        sent, last = 0, 0
        while True:
            chunk = list(reachable.filter(pk__gt=last).values_list("pk", "email", "name")[:chunk_size])
            if not chunk:
                break
            last, sent = chunk[-1][0], sent + len(chunk)
            _on_commit(_nps_send_chunk, survey.pk, survey.name, survey.question, chunk, at)
        NpsSurvey.objects.filter(pk=survey.pk).update(sent_count=sent)
    survey.refresh_from_db()
    return survey


def nps_record(*, token: str, score, comment: str = "", now: datetime | None = None) -> NpsResponse:
    """A customer's answer from the NPS link: one per survey and customer. Refuses a
    forged, expired or already answered link and a score outside 0–10; nothing is
    written on a refusal."""
    survey, customer = nps_invitation(token=token, now=now)
    score = _clean_score(score, low=0, high=10)
    comment = _clean_comment(comment)
    try:
        with transaction.atomic():
            return NpsResponse.objects.create(
                survey=survey, customer=customer, score=score, comment=comment, answered_at=now or timezone.now()
            )
    except IntegrityError:
        raise Conflict(_("You have already answered this survey."), code="already_answered") from None

"""Reads of CSAT and NPS: what a signed survey link says (and whether it may still be
answered), the scores per team and week for the reports and the dashboards, and an NPS
survey's results.

**Links.** A link carries a payload signed with ``django.core.signing`` (a salt per
kind, so a CSAT link is no NPS link) and the time it was issued; it is refused when
forged (``invalid_link``), older than its maximum age (``link_expired``, 410) or
already answered (``already_answered``, 409). ``now`` may be given to check a link as
of another time (tests, and links issued for a given time)."""

from datetime import date, datetime, timedelta

from django.conf import settings
from django.core import signing
from django.db.models import Avg, Count, DateField, Q
from django.db.models.functions import TruncWeek
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ApplicationError, Conflict, NotFound
from core.timezones import operator_timezone
from users.models import Customer

from ..models import CsatResponse, NpsResponse, NpsSurvey, Ticket
from .reports import Period, nps_score, team_label, week_label

CSAT_SALT = "feedback.csat"
NPS_SALT = "feedback.nps"


def csat_max_age() -> timedelta:
    return timedelta(days=getattr(settings, "FEEDBACK_CSAT_MAX_AGE_DAYS", 14))


def nps_max_age() -> timedelta:
    return timedelta(days=getattr(settings, "FEEDBACK_NPS_MAX_AGE_DAYS", 30))


class LinkSigner(signing.TimestampSigner):
    """Django's ``TimestampSigner`` with a settable clock: the timestamp it writes and
    the age it checks are taken at ``now`` (the current time when None). Signing and
    the signature check are Django's own."""

    def __init__(self, *, salt: str, now: datetime | None = None):
        super().__init__(salt=salt)
        self._now = now

    def _at(self) -> float:
        return (self._now or timezone.now()).timestamp()

    def timestamp(self) -> str:
        return signing.b62_encode(int(self._at()))

    def unsign(self, value: str, max_age: timedelta | None = None) -> str:
        result = signing.Signer.unsign(self, value)
        value, stamp = result.rsplit(self.sep, 1)
        if max_age is not None:
            age = self._at() - signing.b62_decode(stamp)
            if age > max_age.total_seconds():
                raise signing.SignatureExpired(f"Signature age {age} > {max_age.total_seconds()} seconds")
        return value


def _invalid() -> ApplicationError:
    return ApplicationError(_("This link is not valid."), code="invalid_link")


def link_payload(*, token: str, salt: str, max_age: timedelta, keys: tuple[str, ...], now=None) -> dict:
    """The integer ``keys`` a signed link holds; refuses a forged or expired link."""
    try:
        payload = LinkSigner(salt=salt, now=now).unsign_object(token, max_age=max_age)
    except signing.SignatureExpired:
        raise ApplicationError(_("This link has expired."), code="link_expired", status=410) from None
    except (signing.BadSignature, ValueError, UnicodeError):
        raise _invalid() from None
    if not isinstance(payload, dict) or not all(type(payload.get(k)) is int for k in keys):
        raise _invalid()
    return payload


def csat_invitation(*, token: str, now: datetime | None = None) -> Ticket:
    """The ticket a CSAT link asks about, if the link may still be answered."""
    payload = link_payload(token=token, salt=CSAT_SALT, max_age=csat_max_age(), keys=("t",), now=now)
    ticket = Ticket.objects.select_related("team").filter(pk=payload["t"]).first()
    if ticket is None:
        raise _invalid()
    if CsatResponse.objects.filter(ticket=ticket).exists():
        raise Conflict(_("This ticket's survey has already been answered."), code="already_answered")
    return ticket


def nps_invitation(*, token: str, now: datetime | None = None) -> tuple[NpsSurvey, Customer]:
    """The survey and the customer an NPS link is for, if the link may still be answered."""
    payload = link_payload(token=token, salt=NPS_SALT, max_age=nps_max_age(), keys=("s", "c"), now=now)
    survey = NpsSurvey.objects.filter(pk=payload["s"], sent_at__isnull=False).first()
    customer = Customer.objects.filter(pk=payload["c"]).first()
    if survey is None or customer is None:
        raise _invalid()
    if NpsResponse.objects.filter(survey=survey, customer=customer).exists():
        raise Conflict(_("You have already answered this survey."), code="already_answered")
    return survey, customer


# --- scores -------------------------------------------------------------------------


def _weekly(qs, field: str):
    return qs.annotate(week=TruncWeek(field, tzinfo=operator_timezone(), output_field=DateField()))


def csat_by_team_week(*, start: date, end: date) -> list[dict]:
    """CSAT answers given from ``start`` to ``end`` (operator days, both included) per
    team (the ticket's team when it was answered) and ISO week: one query.
    ``[{"week", "week_label", "team", "team_label", "average", "count", "satisfied",
    "satisfied_share"}, ...]`` by week then team; satisfied means 4 or 5."""
    start_at, end_at = Period(start, end).bounds
    rows = (
        _weekly(CsatResponse.objects.filter(answered_at__gte=start_at, answered_at__lt=end_at), "answered_at")
        .values("week", "team__code")
        .annotate(average=Avg("score"), count=Count("id"), satisfied=Count("id", filter=Q(score__gte=4)))
        .order_by()
    )
    rows = sorted(rows, key=lambda r: (r["week"], r["team__code"] is None, r["team__code"] or ""))
    return [
        {
            "week": row["week"],
            "week_label": week_label(row["week"]),
            "team": row["team__code"],
            "team_label": team_label(row["team__code"]),
            "average": float(row["average"]),
            "count": row["count"],
            "satisfied": row["satisfied"],
            "satisfied_share": row["satisfied"] / row["count"],
        }
        for row in rows
    ]


def _nps_counts():
    return {
        "count": Count("id"),
        "promoters": Count("id", filter=Q(score__gte=9)),
        "passives": Count("id", filter=Q(score__gte=7, score__lte=8)),
        "detractors": Count("id", filter=Q(score__lte=6)),
    }


def nps_by_week(*, start: date, end: date) -> list[dict]:
    """NPS answers given from ``start`` to ``end`` (operator days) per ISO week, over every
    survey: one query. ``[{"week", "week_label", "nps", "count", "promoters",
    "passives", "detractors"}, ...]`` oldest first."""
    start_at, end_at = Period(start, end).bounds
    rows = (
        _weekly(NpsResponse.objects.filter(answered_at__gte=start_at, answered_at__lt=end_at), "answered_at")
        .values("week")
        .annotate(**_nps_counts())
        .order_by("week")
    )
    return [
        {
            **row,
            "week_label": week_label(row["week"]),
            "nps": nps_score(row["promoters"], row["detractors"], row["count"]),
        }
        for row in rows
    ]


def nps_survey_list():
    """Every survey, newest first, with its answers counted and its NPS: one query."""
    surveys = list(
        NpsSurvey.objects.select_related("created_by").annotate(
            answers=Count("responses"),
            promoters=Count("responses", filter=Q(responses__score__gte=9)),
            detractors=Count("responses", filter=Q(responses__score__lte=6)),
        )
    )
    for survey in surveys:
        survey.nps = nps_score(survey.promoters, survey.detractors, survey.answers)
    return surveys


def nps_survey_get(*, survey_id: int) -> NpsSurvey:
    survey = NpsSurvey.objects.select_related("created_by").filter(pk=survey_id).first()
    if survey is None:
        raise NotFound(f"No NPS survey {survey_id}.")
    return survey


def nps_survey_results(*, survey: NpsSurvey) -> dict:
    """One survey's answers: the distribution over 0–10 (every score present), the
    promoters (9–10), passives (7–8) and detractors (0–6) with their shares, NPS, and
    the response rate against ``sent_count``: one query."""
    found = dict(survey.responses.values("score").annotate(n=Count("id")).values_list("score", "n"))
    count = sum(found.values())
    promoters = sum(n for s, n in found.items() if s >= 9)
    detractors = sum(n for s, n in found.items() if s <= 6)
    passives = count - promoters - detractors
    return {
        "distribution": [
            {"score": s, "count": found.get(s, 0), "share": found.get(s, 0) / count if count else None}
            for s in range(11)
        ],
        "count": count,
        "promoters": promoters,
        "passives": passives,
        "detractors": detractors,
        "promoters_share": promoters / count if count else None,
        "passives_share": passives / count if count else None,
        "detractors_share": detractors / count if count else None,
        "nps": nps_score(promoters, detractors, count),
        "response_rate": count / survey.sent_count if survey.sent_count else None,
    }


def nps_recent_comments(*, survey: NpsSurvey, limit: int = 50):
    return survey.responses.exclude(comment="").order_by("-answered_at", "-id")[:limit]

"""Thin Celery tasks for CSAT and NPS."""

from celery import shared_task

from core.errors import ApplicationError

from .models import NpsSurvey
from .services import satisfaction


@shared_task(name="feedback.nps_survey_send")
def nps_survey_send_task(survey_id: int) -> int | None:
    """Sends one NPS survey to its segment; returns how many were emailed. Safe to run
    twice: a survey already sent (or gone) is left alone."""
    survey = NpsSurvey.objects.filter(pk=survey_id).first()
    if survey is None or survey.sent_at is not None:
        return None
    try:
        return satisfaction.nps_survey_send(survey=survey).sent_count
    except ApplicationError as exc:
        if exc.code == "already_sent":
            return None
        raise

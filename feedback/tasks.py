"""Thin Celery tasks of the feedback app: ids and plain values in, one service call,
safe to run twice, one at a time where a job lock says so."""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from core.errors import ApplicationError
from core.services import JobAlreadyRunning, job_run

from .models import NpsSurvey
from .services import escalation, satisfaction, themes

# A sweep takes seconds; a run that dies frees the lock well before the next few minutes.
SWEEP_LOCK_SECONDS = 300
#: tickets created this many days back (and any still open) are grouped into themes
THEMES_SUGGEST_DAYS = 14


@shared_task(name="feedback.sla_escalation_sweep")
def sla_escalation_sweep_task() -> None:
    """Every minute (beat). Safe to run twice: each warning and breach is marked once."""
    try:
        with job_run("feedback.sla_escalation_sweep", lock_seconds=SWEEP_LOCK_SECONDS) as run:
            run.counts.update(escalation.sla_escalation_sweep())
    except JobAlreadyRunning:
        return


@shared_task(name="feedback.themes_suggest")
def themes_suggest_task(days: int = THEMES_SUGGEST_DAYS) -> dict | None:
    """Hourly (beat). Safe to run twice (a ticket in a theme is not grouped again) and one
    at a time (a run that finds another running returns None)."""
    try:
        with job_run("feedback.themes_suggest") as run:
            now = timezone.now()
            counts = themes.themes_suggest(since=now - timedelta(days=days), now=now)
            run.counts.update(counts)
            return counts
    except JobAlreadyRunning:
        return None


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

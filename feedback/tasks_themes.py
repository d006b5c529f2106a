"""The themes job, a thin Celery task (to be folded into ``feedback.tasks``).

Proposed beat entry (ops_site/settings/base.py)::

    "feedback-themes-suggest-hourly": {
        "task": "feedback.themes_suggest",
        "schedule": crontab(minute=40),
        "options": {"expires": 50 * 60},
    },
"""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from core.services import JobAlreadyRunning, job_run

from .services import themes as services

#: tickets created this many days back (and any still open) are grouped
SUGGEST_DAYS = 14


@shared_task(name="feedback.themes_suggest")
def themes_suggest_task(days: int = SUGGEST_DAYS) -> dict | None:
    """Safe to run twice (a ticket in a theme is not grouped again) and one at a time
    (a run that finds another running returns None)."""
    try:
        with job_run("feedback.themes_suggest") as run:
            now = timezone.now()
            counts = services.themes_suggest(since=now - timedelta(days=days), now=now)
            run.counts.update(counts)
            return counts
    except JobAlreadyRunning:
        return None

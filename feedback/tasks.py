from celery import shared_task

from core.services import JobAlreadyRunning, job_run

from .services import escalation

# A sweep takes seconds; a run that dies frees the lock well before the next few minutes.
SWEEP_LOCK_SECONDS = 300


@shared_task(name="feedback.sla_escalation_sweep")
def sla_escalation_sweep_task() -> None:
    """Every minute (beat). Safe to run twice: each warning and breach is marked once."""
    try:
        with job_run("feedback.sla_escalation_sweep", lock_seconds=SWEEP_LOCK_SECONDS) as run:
            run.counts.update(escalation.sla_escalation_sweep())
    except JobAlreadyRunning:
        return

"""PLACEHOLDER until the SLA branch lands: around-the-clock arithmetic only (business
hours, holidays and make-up days come with feedback/sla.py). Same signatures."""

from datetime import timedelta

from ..models import SlaPolicy, SlaTarget, Status


def _due(t: SlaTarget, now):
    left = t.target_seconds - t.consumed_seconds
    t.due_at = now + timedelta(seconds=left)
    t.warn_at = (
        None if t.warned_at else now + timedelta(seconds=float(t.warn_share) * t.target_seconds - t.consumed_seconds)
    )


def sla_targets_start(*, ticket, now):
    policy = SlaPolicy.objects.filter(priority=ticket.priority).first()
    rows = []
    for kind, minutes in [
        ("first_response", getattr(policy, "first_response_minutes", None)),
        ("resolution", getattr(policy, "resolution_minutes", None)),
    ]:
        if not minutes:
            continue
        t = SlaTarget(
            ticket=ticket,
            kind=kind,
            target_seconds=minutes * 60,
            business_hours=False,
            warn_share=policy.warn_share,
            started_at=now,
            running_since=now,
        )
        _due(t, now)
        rows.append(t)
    return SlaTarget.objects.bulk_create(rows)


def _stop(t, now):
    t.consumed_seconds += int((now - t.running_since).total_seconds()) if t.running_since else 0
    t.state = (
        SlaTarget.State.MET
        if t.consumed_seconds <= t.target_seconds and not t.breached_at
        else SlaTarget.State.BREACHED
    )
    t.running_since = t.due_at = t.warn_at = None
    t.stopped_at = now
    t.save()


def sla_on_status(*, ticket, old, new, now):
    for t in SlaTarget.objects.filter(ticket=ticket):
        if new == Status.WAITING and t.state == SlaTarget.State.RUNNING:
            t.consumed_seconds += int((now - t.running_since).total_seconds())
            t.running_since = t.due_at = t.warn_at = None
            t.paused_since, t.state = now, SlaTarget.State.PAUSED
            t.save()
        elif old == Status.WAITING and t.state == SlaTarget.State.PAUSED and new != Status.RESOLVED:
            t.paused_seconds += int((now - t.paused_since).total_seconds())
            t.paused_since, t.running_since, t.state = None, now, SlaTarget.State.RUNNING
            _due(t, now)
            t.save()
        elif new in (Status.RESOLVED, Status.CLOSED) and t.state in (SlaTarget.State.RUNNING, SlaTarget.State.PAUSED):
            _stop(t, now)
        elif new == Status.IN_PROGRESS and old in (Status.RESOLVED, Status.CLOSED) and t.kind == "resolution":
            t.running_since, t.state, t.stopped_at = now, SlaTarget.State.RUNNING, None
            _due(t, now)
            t.save()


def sla_first_response(*, ticket, now):
    for t in SlaTarget.objects.filter(ticket=ticket, kind="first_response", state=SlaTarget.State.RUNNING):
        _stop(t, now)


def sla_reprioritize(*, ticket, now):
    return None

"""PLACEHOLDER until the SLA branch lands."""

from ..models import SlaTarget


def sla_state(*, ticket, now):
    out = []
    for t in SlaTarget.objects.filter(ticket=ticket).order_by("kind"):
        counted = t.consumed_seconds + (int((now - t.running_since).total_seconds()) if t.running_since else 0)
        out.append(
            {
                "target": t.kind,
                "target_seconds": t.target_seconds,
                "business_hours": t.business_hours,
                "due_at": t.due_at,
                "seconds_left": t.target_seconds - counted,
                "state": t.state,
                "warned": t.warned_at is not None,
                "breached": t.breached_at is not None,
                "paused_seconds": t.paused_seconds,
            }
        )
    return out

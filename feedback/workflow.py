"""The ticket workflow, declared once: which action moves a ticket from which status to
which. ``ticket_transition`` (services) refuses anything not in ``TRANSITIONS``; the
pages read ``actions_from`` to show only the buttons that work.

A table rather than a state-machine library (django-fsm-2 puts transitions on the model
as decorated methods): it keeps ``Model`` free of workflow, and the same table answers
"what can I do from here" for the queue's bulk actions and the API's errors."""

from django.utils.translation import gettext_lazy as _

from .models import Status

#: action → (allowed from, to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "triage": (frozenset({Status.NEW}), Status.TRIAGED),
    "start": (frozenset({Status.NEW, Status.TRIAGED}), Status.IN_PROGRESS),
    "wait": (frozenset({Status.TRIAGED, Status.IN_PROGRESS}), Status.WAITING),
    # A customer's reply (or an operator on their behalf) brings a waiting ticket back.
    "resume": (frozenset({Status.WAITING}), Status.IN_PROGRESS),
    "resolve": (frozenset({Status.NEW, Status.TRIAGED, Status.IN_PROGRESS, Status.WAITING}), Status.RESOLVED),
    "close": (frozenset({Status.RESOLVED}), Status.CLOSED),
    "reopen": (frozenset({Status.RESOLVED, Status.CLOSED}), Status.IN_PROGRESS),
}

ACTION_LABELS = {
    "triage": _("Triage"),
    "start": _("Start work"),
    "wait": _("Wait on customer"),
    "resume": _("Resume"),
    "resolve": _("Resolve"),
    "close": _("Close"),
    "reopen": _("Reopen"),
}


def target_of(action: str, status: str) -> str | None:
    """The status ``action`` leads to from ``status``, or None when the workflow does not allow it."""
    allowed = TRANSITIONS.get(action)
    if allowed is None or status not in allowed[0]:
        return None
    return allowed[1]


def actions_from(status: str) -> list[str]:
    return [action for action, (sources, _to) in TRANSITIONS.items() if status in sources]

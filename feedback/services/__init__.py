"""Writes of the feedback app, one module per job: tickets (open, transitions, replies,
assignment, merge), clock (the SLA targets), escalation (the sweep), and the rest."""

# What other apps call (the import contracts let them reach ``feedback.services`` only):
# community keyword alerts open their crisis ticket and add notes to it.
from .tickets import MAX_BODY, MAX_SUBJECT, ticket_note, ticket_open  # noqa: F401

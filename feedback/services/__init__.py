"""Writes of the feedback app, one module per job: tickets (open, transitions, replies,
assignment, merge), clock (the SLA targets), escalation (the sweep), and the rest."""

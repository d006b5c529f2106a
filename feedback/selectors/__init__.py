"""Reads of the feedback app: tickets (the queue, a ticket, the app's view), reports, themes."""

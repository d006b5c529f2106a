"""Placeholder on this branch: the coordinator replaces it with the real module
(the view-context builders moved out of segments/views.py) at merge."""

from .views import customer_panel_context, dashboard_card_context  # noqa: F401

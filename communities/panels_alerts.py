"""The keyword-alerts piece of the dashboard: the open alerts of the viewer's visible
groups (``templates/communities/alerts/_dashboard_card.html`` reads it)."""

from .selectors.alerts import alerts_open


def alerts_card_context(*, viewer) -> dict | None:
    """None for those who may not see alerts (the card is then left out)."""
    if not viewer.has_perm("communities.view_alert"):
        return None
    return alerts_open(viewer=viewer, limit=5)

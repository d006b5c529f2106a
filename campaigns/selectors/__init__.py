"""Reads for campaigns (other apps and the composition layer use these, not the models)."""

from .campaigns import campaign_list, campaign_results, campaign_status_counts, campaigns_sent_held  # noqa: F401
from .deliveries import customer_deliveries, delivery_explain  # noqa: F401

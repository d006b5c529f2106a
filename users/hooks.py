"""What the users app publishes for the apps above it (see ``core.hooks``).

Subscribers are wired by the composition layer (``console.apps``); users
imports none of them.
"""

from core.hooks import Hook

# Orders were created or changed (amount, status, customer) in a committed-to-be
# transaction: the customers whose orders moved, and the orders' ids.
orders_changed = Hook("users.orders_changed", arguments=("customer_ids", "order_ids"))

# New events were stored: their ids grouped by event type (``{"checkin": [1, 5]}``),
# so a subscriber that cares about some types reads no row to pick its own.
events_appended = Hook("users.events_appended", arguments=("event_ids_by_type",))

# A customer withdrew marketing consent by unsubscribing (the API, a one-click link):
# the channels it covered (every channel for "all").
customer_unsubscribed = Hook("users.customer_unsubscribed", arguments=("customer_id", "channels"))

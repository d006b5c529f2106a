"""Writes for the points ledger, earning rules, levels, badges and the points mall.

``ledger`` posts entries (one or a batch) under the accounts' row locks and runs
expiry and the reconcile proof; ``earning`` turns orders and events into rule
entries in the worker; ``levels`` moves levels and awards badges; ``mall``
redeems and cancels rewards; ``catalogue`` saves and deletes rules, rewards, levels
and badges and ``policy`` changes the incentive policy, both audited from → to.
Other apps and the interfaces import from here.
"""

from .catalogue import (
    badge_save,
    catalogue_delete,
    catalogue_save,
    earning_rule_save,
    level_save,
    reward_save,
)
from .earning import event_rules_apply, order_rules_apply
from .ledger import (
    MAX_POINTS_PER_ENTRY,
    EntryOutcome,
    EntryRequest,
    PostedEntry,
    ledger_reconcile,
    outcome_errors,
    points_expire,
    points_post,
    points_post_batch,
    request_hash,
)
from .levels import badges_award, levels_update
from .mall import redemption_cancel, reward_redeem
from .policy import policy_update

__all__ = [
    "MAX_POINTS_PER_ENTRY",
    "EntryOutcome",
    "EntryRequest",
    "PostedEntry",
    "badge_save",
    "badges_award",
    "catalogue_delete",
    "catalogue_save",
    "earning_rule_save",
    "event_rules_apply",
    "ledger_reconcile",
    "level_save",
    "levels_update",
    "order_rules_apply",
    "outcome_errors",
    "points_expire",
    "points_post",
    "points_post_batch",
    "policy_update",
    "redemption_cancel",
    "request_hash",
    "reward_redeem",
    "reward_save",
]

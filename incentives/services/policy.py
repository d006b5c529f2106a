"""The programme-wide incentive policy (one row), changed through one service."""

from django.db import transaction

from core.errors import ApplicationError
from core.services import audit_record, audit_snapshot

from ..models import IncentivePolicy

POLICY_FIELDS = (
    "expiry_months",
    "reminder_days",
    "growth_window_days",
    "level_grace_days",
    "level_downgrade_margin_pct",
)


def policy_update(*, actor=None, **changes) -> IncentivePolicy:
    """Changes the policy (creating its row on first use), validated by the model's
    ``clean``; the audit row says from → to for each field that moved."""
    unknown = sorted(set(changes) - set(POLICY_FIELDS))
    if unknown:
        raise ApplicationError(f"Not a policy field: {', '.join(unknown)}.", code="invalid")
    with transaction.atomic():
        policy = IncentivePolicy.objects.select_for_update().order_by("pk").first()
        created = policy is None
        policy = policy or IncentivePolicy()
        before = {} if created else audit_snapshot(policy, POLICY_FIELDS)
        for name, value in changes.items():
            setattr(policy, name, value)
        policy.full_clean()
        after = audit_snapshot(policy, POLICY_FIELDS)
        if not created and before == after:
            return policy
        policy.save()
        audit_record(actor=actor, action="incentive_policy.change", obj=policy, before=before, after=after)
    return policy

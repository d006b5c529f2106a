"""How a ticket's priority is reached: pure logic, no database.

1. A priority the caller gives wins over the matrix (``{"given": p}``); otherwise the
   admin-edited matrix cell for (impact scope, severity, resolution difficulty) decides
   (``{"matrix": {...}}``), and a missing cell means ``normal`` (``{"default": ...}``).
2. Then the first active VIP rule matching the customer's value tier or RFM group (from
   the latest published segments run) raises it ``raise_by`` steps, never above the
   rule's ``max_priority`` and never lowering it (``{"vip": {...}}``).

The result's ``basis`` is stored on the ticket and shown to operators and the app, so
"why is this urgent?" always has an answer."""

from collections.abc import Iterable
from dataclasses import dataclass

from .models import PRIORITY_ORDER, Difficulty, Impact, Priority, Severity

_RANK = {p.value: i for i, p in enumerate(PRIORITY_ORDER)}


@dataclass(frozen=True)
class VipSpec:
    name: str
    tiers: frozenset[str]
    rfm_groups: frozenset[str]
    raise_by: int
    max_priority: str


def raised(priority: str, steps: int, *, ceiling: str = Priority.CRISIS) -> str:
    """``priority`` moved ``steps`` up the order, stopping at ``ceiling`` (never lowered by it)."""
    rank = _RANK[priority]
    top = max(rank, _RANK[ceiling])
    return PRIORITY_ORDER[min(rank + steps, top)].value


def priority_decide(
    *,
    given: str | None,
    impact: str,
    severity: str,
    difficulty: str,
    matrix: dict[tuple[str, str, str], str],
    vip_rules: Iterable[VipSpec],
    tier: str = "",
    rfm_group: str = "",
) -> tuple[str, dict]:
    """Returns (priority, basis)."""
    if given:
        priority, basis = given, {"given": given}
    else:
        cell = matrix.get((impact, severity, difficulty))
        if cell is None:
            priority, basis = Priority.NORMAL.value, {"default": Priority.NORMAL.value}
        else:
            priority = cell
            basis = {"matrix": {"impact": impact, "severity": severity, "difficulty": difficulty, "priority": cell}}
    for rule in vip_rules:
        hit_tier = tier and tier in rule.tiers
        hit_group = rfm_group and rfm_group in rule.rfm_groups
        if not (hit_tier or hit_group):
            continue
        to = raised(priority, rule.raise_by, ceiling=rule.max_priority)
        basis["vip"] = {
            "rule": rule.name,
            "tier": tier if hit_tier else "",
            "rfm_group": rfm_group if hit_group else "",
            "from": priority,
            "to": to,
        }
        priority = to
        break
    return priority, basis


def default_matrix() -> dict[tuple[str, str, str], str]:
    """The shipped matrix: impact scope plus severity gives a score of 0-4 (one customer
    and minor = 0, all customers and critical = 4) mapped to low … crisis; an easy fix of
    a small problem is still ``normal`` (quick wins are done, not parked), a hard one
    ``low``."""
    impacts = [Impact.ONE, Impact.MANY, Impact.ALL]
    severities = [Severity.MINOR, Severity.MAJOR, Severity.CRITICAL]
    by_score = {
        Difficulty.EASY: [Priority.NORMAL, Priority.NORMAL, Priority.HIGH, Priority.URGENT, Priority.CRISIS],
        Difficulty.HARD: [Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT, Priority.CRISIS],
    }
    return {
        (impact.value, severity.value, difficulty.value): by_score[difficulty][i + j].value
        for i, impact in enumerate(impacts)
        for j, severity in enumerate(severities)
        for difficulty in (Difficulty.EASY, Difficulty.HARD)
    }

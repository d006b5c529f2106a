"""Pure segment logic: rule-set validation, and the classifications in two
equivalent forms — Python functions (for the 360 page's "why" and for tests)
and SQL ``CASE`` expressions compiled from the same rule set (for the
set-based recompute). Tests check that both agree on generated data.

Scores: ``score = ceil(5 × cume_dist)`` over the customers with a paid order in
the window, ordered so that 5 is best (for R, fewest days). Computed in
integers as ``(5·k + n − 1) div n`` where ``k`` counts customers with a value no
better than this one's (peers included) — equal values always get equal
scores, with no floating-point edge at the quintile boundaries.
"""

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

STAGES = ["prospect", "new", "growing", "mature", "churn_warning", "churned"]
TIERS = ["super_vip", "core", "active", "normal", "potential"]
CLASSES = ["core_value", "potential_growth", "active_maintain", "silent_to_wake", "churn_risk"]


@dataclass(frozen=True)
class Thresholds:
    """The numbers of a RuleSet, as plain values."""

    rfm_window_days: int
    tier_super_vip_annual: Decimal
    tier_core_annual: Decimal
    tier_active_monthly: Decimal
    tier_normal_monthly: Decimal
    new_days: int
    mature_min_orders: int
    churn_warning_p_alive: float
    churned_p_alive: float
    warning_inactive_days: int
    churned_inactive_days: int
    rfm_groups: list
    rfm_segments: list

    @classmethod
    def of(cls, rule_set) -> "Thresholds":
        return cls(**{f: getattr(rule_set, f) for f in cls.__dataclass_fields__})


_SAFE_CODE = re.compile(r"[\w-]{1,20}")


def _check_map(entries: Any, keys: tuple[str, ...], label: str) -> list[str]:
    errors = []
    if not isinstance(entries, list) or not entries:
        return [f"{label} must be a non-empty list."]
    seen = set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("code"), str) or not entry["code"]:
            errors.append(f"{label}[{i}] needs a 'code'.")
            continue
        if not _SAFE_CODE.fullmatch(entry["code"]):
            # The code is compiled into the recompute's SQL and stored in a 20-character column.
            errors.append(f"{label}[{i}]: code {entry['code']!r} must be 1-20 letters, digits, '_' or '-'.")
        if entry["code"] in seen:
            errors.append(f"{label}[{i}]: code {entry['code']!r} appears twice.")
        seen.add(entry["code"])
        unknown = set(entry) - {"code", *keys}
        if unknown:
            errors.append(f"{label}[{i}]: unknown key(s) {sorted(unknown)}; allowed: {list(keys)}.")
        for key in keys:
            rng = entry.get(key)
            if not (
                isinstance(rng, list)
                and len(rng) == 2
                and all(isinstance(v, int) and 1 <= v <= 5 for v in rng)
                and rng[0] <= rng[1]
            ):
                errors.append(f"{label}[{i}].{key} must be [low, high] with 1 <= low <= high <= 5.")
    return errors


def validate_rule_set(rs) -> dict[str, list[str]]:
    """Field → messages for a rule set that makes no sense (empty when fine)."""
    errors: dict[str, list[str]] = {}

    def add(field, message):
        errors.setdefault(field, []).append(message)

    if not rs.rfm_window_days or rs.rfm_window_days < 1:
        add("rfm_window_days", "The RFM window must be at least 1 day.")
    if rs.tier_core_annual >= rs.tier_super_vip_annual:
        add("tier_core_annual", "The core tier must start below the super VIP threshold.")
    if rs.tier_active_monthly * 12 >= rs.tier_core_annual:
        add("tier_active_monthly", "The active tier's yearly equivalent must be below the core tier.")
    if rs.tier_normal_monthly >= rs.tier_active_monthly:
        add("tier_normal_monthly", "The normal tier must start below the active tier (tiers overlap).")
    if rs.tier_normal_monthly < 0:
        add("tier_normal_monthly", "Thresholds cannot be negative.")
    if not (0 < rs.churned_p_alive < rs.churn_warning_p_alive < 1):
        add("churn_warning_p_alive", "Need 0 < churned P(alive) < churn-warning P(alive) < 1.")
    if not (0 < rs.warning_inactive_days < rs.churned_inactive_days):
        add("warning_inactive_days", "Need 0 < churn-warning inactivity < churned inactivity (days).")
    if rs.mature_min_orders < 2:
        add("mature_min_orders", "Mature needs at least 2 paid orders.")
    for message in _check_map(rs.rfm_groups, ("r", "f", "m"), "rfm_groups"):
        add("rfm_groups", message)
    for message in _check_map(rs.rfm_segments, ("r", "fm"), "rfm_segments"):
        add("rfm_segments", message)
    return errors


# --- Python forms ------------------------------------------------------------------


def score(k: int, n: int) -> int:
    """ceil(5 × k / n) in integers."""
    return (5 * k + n - 1) // n


def _in(value: int, rng: list[int]) -> bool:
    return rng[0] <= value <= rng[1]


def rfm_group(r: int | None, f: int | None, m: int | None, t: Thresholds) -> str:
    if r is None:
        return ""
    for g in t.rfm_groups:
        if _in(r, g["r"]) and _in(f, g["f"]) and _in(m, g["m"]):
            return g["code"]
    return "general"


def fm_score(f: int, m: int) -> int:
    """round((F + M) / 2), halves up, in integers."""
    return (f + m + 1) // 2


def rfm_segment(r: int | None, f: int | None, m: int | None, t: Thresholds) -> str:
    if r is None:
        return ""
    fm = fm_score(f, m)
    for s in t.rfm_segments:
        if _in(r, s["r"]) and _in(fm, s["fm"]):
            return s["code"]
    return "other"


def tier(*, frequency: int, monetary: Decimal, t: Thresholds) -> str:
    """Value tier from spend in the window, scaled to a year / a month."""
    if frequency <= 0:
        return ""
    annual = Decimal(monetary) * 365 / t.rfm_window_days
    monthly = annual / 12
    if annual > t.tier_super_vip_annual:
        return "super_vip"
    if annual >= t.tier_core_annual:
        return "core"
    if monthly > t.tier_active_monthly:
        return "active"
    if monthly >= t.tier_normal_monthly or frequency >= 2:
        return "normal"
    return "potential"


def stage(
    *,
    orders_total: int,
    frequency: int,
    recency_days: float | None,
    signup_age_days: float | None,
    p_alive: float | None,
    t: Thresholds,
) -> str:
    """Lifecycle stage. Churn signals win; then new sign-ups; then by orders in the window."""
    if orders_total <= 0:
        if signup_age_days is not None and signup_age_days <= t.new_days:
            return "new"
        return "prospect"
    if (recency_days is not None and recency_days >= t.churned_inactive_days) or (
        p_alive is not None and p_alive < t.churned_p_alive
    ):
        return "churned"
    if (recency_days is not None and recency_days >= t.warning_inactive_days) or (
        p_alive is not None and p_alive < t.churn_warning_p_alive
    ):
        return "churn_warning"
    if signup_age_days is not None and signup_age_days <= t.new_days:
        return "new"
    if frequency >= t.mature_min_orders:
        return "mature"
    return "growing"


# Reactivation (回流): back in an active stage after churn warning or churned. Stated
# once, here: ``reactivated`` is the rule, and ``reactivated_sql`` (the recompute's stage
# changes) is built from the same two sets; a test checks one against the other.
LAPSED_STAGES = ("churn_warning", "churned")
ACTIVE_STAGES = ("new", "growing", "mature")


def reactivated(from_stage: str | None, to_stage: str) -> bool:
    return from_stage in LAPSED_STAGES and to_stage in ACTIVE_STAGES


def operating_class(*, stage_: str, tier_: str, group: str) -> str:
    """The five day-to-day classes, most urgent first."""
    if stage_ in ("churn_warning", "churned"):
        return "churn_risk"
    if tier_ in ("super_vip", "core") or group == "high_value":
        return "core_value"
    if group == "potential" or stage_ in ("new", "growing"):
        return "potential_growth"
    if group == "silent" or stage_ == "prospect":
        return "silent_to_wake"
    return "active_maintain"


# --- SQL forms (compiled from the same thresholds) ---------------------------------


def _range_sql(column: str, rng: list[int]) -> str:
    return f"{column} BETWEEN {int(rng[0])} AND {int(rng[1])}"


def rfm_group_sql(t: Thresholds, r: str = "r_score", f: str = "f_score", m: str = "m_score") -> str:
    whens = " ".join(
        f"WHEN {_range_sql(r, g['r'])} AND {_range_sql(f, g['f'])} AND {_range_sql(m, g['m'])} "
        f"THEN '{_code(g['code'])}'"
        for g in t.rfm_groups
    )
    return f"CASE WHEN {r} IS NULL THEN '' {whens} ELSE 'general' END"


def rfm_segment_sql(t: Thresholds, r: str = "r_score", f: str = "f_score", m: str = "m_score") -> str:
    fm = f"(({f} + {m} + 1) / 2)"
    whens = " ".join(
        f"WHEN {_range_sql(r, s['r'])} AND {_range_sql(fm, s['fm'])} THEN '{_code(s['code'])}'" for s in t.rfm_segments
    )
    return f"CASE WHEN {r} IS NULL THEN '' {whens} ELSE 'other' END"


def _code(code: str) -> str:
    if not code.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"unsafe code {code!r}")
    return code


def tier_sql(t: Thresholds) -> tuple[str, list]:
    """(SQL, params) over columns frequency and monetary."""
    annual = f"(monetary * 365.0 / {int(t.rfm_window_days)})"
    # CAST: SQLite binds a Decimal as text, and any number compares below any text there.
    sql = (
        "CASE WHEN frequency <= 0 THEN '' "
        f"WHEN {annual} > CAST(%s AS NUMERIC) THEN 'super_vip' "
        f"WHEN {annual} >= CAST(%s AS NUMERIC) THEN 'core' "
        f"WHEN {annual} / 12 > CAST(%s AS NUMERIC) THEN 'active' "
        f"WHEN {annual} / 12 >= CAST(%s AS NUMERIC) OR frequency >= 2 THEN 'normal' "
        "ELSE 'potential' END"
    )
    return sql, [t.tier_super_vip_annual, t.tier_core_annual, t.tier_active_monthly, t.tier_normal_monthly]


def stage_sql(t: Thresholds, *, signup_age: str) -> tuple[str, list]:
    """(SQL, params) over orders_total, frequency, recency_days, p_alive and a signup-age expression."""
    sql = (
        "CASE WHEN orders_total <= 0 THEN "
        f"  CASE WHEN {signup_age} IS NOT NULL AND {signup_age} <= %s THEN 'new' ELSE 'prospect' END "
        "WHEN recency_days >= %s OR (p_alive IS NOT NULL AND p_alive < %s) THEN 'churned' "
        "WHEN recency_days >= %s OR (p_alive IS NOT NULL AND p_alive < %s) THEN 'churn_warning' "
        f"WHEN {signup_age} IS NOT NULL AND {signup_age} <= %s THEN 'new' "
        "WHEN frequency >= %s THEN 'mature' ELSE 'growing' END"
    )
    params = [
        t.new_days,
        t.churned_inactive_days,
        t.churned_p_alive,
        t.warning_inactive_days,
        t.churn_warning_p_alive,
        t.new_days,
        t.mature_min_orders,
    ]
    return sql, params


def _codes(codes: tuple[str, ...]) -> str:
    return ", ".join(f"'{_code(c)}'" for c in codes)


def reactivated_sql(from_stage: str, to_stage: str) -> tuple[str, list]:
    """(SQL, params): ``reactivated`` over two stage expressions (a NULL stage before is
    no reactivation)."""
    return (
        f"CASE WHEN {from_stage} IN ({_codes(LAPSED_STAGES)}) AND {to_stage} IN ({_codes(ACTIVE_STAGES)}) "
        "THEN %s ELSE %s END"
    ), [True, False]


def operating_class_sql() -> str:
    return (
        "CASE WHEN stage IN ('churn_warning', 'churned') THEN 'churn_risk' "
        "WHEN tier IN ('super_vip', 'core') OR rfm_group = 'high_value' THEN 'core_value' "
        "WHEN rfm_group = 'potential' OR stage IN ('new', 'growing') THEN 'potential_growth' "
        "WHEN rfm_group = 'silent' OR stage = 'prospect' THEN 'silent_to_wake' "
        "ELSE 'active_maintain' END"
    )

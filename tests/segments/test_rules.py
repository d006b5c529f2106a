"""segments.rules: scores, labels on their boundaries, rule-set validation (without a database), and the
SQL form of reactivation checked against the rule (on the database)."""

import math
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction

import pytest

from segments import rules
from segments.models import RuleSet, default_rfm_groups, default_rfm_segments


def thresholds(**changes) -> rules.Thresholds:
    rs = RuleSet(rfm_groups=default_rfm_groups(), rfm_segments=default_rfm_segments())
    return replace(rules.Thresholds.of(rs), **changes)


T = thresholds()


def rule_set(**changes) -> RuleSet:
    return RuleSet(**{"rfm_groups": default_rfm_groups(), "rfm_segments": default_rfm_segments(), **changes})


# --- score ------------------------------------------------------------------------------


def test_score_is_the_exact_ceiling_of_five_k_over_n():
    for n in range(1, 400):
        for k in range(1, n + 1):
            assert rules.score(k, n) == math.ceil(Fraction(5 * k, n)), (k, n)


def test_score_on_quintile_boundaries():
    assert rules.score(3, 5) == 3 and rules.score(7, 35) == 1
    assert rules.score(1, 1) == 5 and rules.score(1, 1_000_000) == 1 and rules.score(200_000, 1_000_000) == 1
    assert rules.score(200_001, 1_000_000) == 2


# --- tier -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frequency", "monetary", "expected"),
    [
        (5, "100000.01", "super_vip"),
        (5, "100000.00", "core"),  # "above" 100,000
        (5, "50000.00", "core"),  # "from" 50,000
        (5, "49999.99", "active"),  # 4,166.67 a month is above 2,000
        (30, "24000.01", "active"),  # just above 2,000 a month
        (30, "24000.00", "normal"),  # exactly 2,000 a month is not "above"
        (2, "2400.00", "normal"),  # exactly 200 a month
        (1, "2400.00", "normal"),  # one order, but 200 a month
        (2, "2399.99", "normal"),  # a repeat buyer under 200 a month is normal too
        (1, "2399.99", "potential"),  # first purchase only
        (1, "0.00", "potential"),
        (0, "0.00", ""),  # never bought
        (0, "999999.00", ""),
    ],
)
def test_tier_boundaries(frequency, monetary, expected):
    assert rules.tier(frequency=frequency, monetary=Decimal(monetary), t=T) == expected


def test_tier_scales_a_shorter_window_to_a_year():
    t = thresholds(rfm_window_days=73)  # a fifth of a year
    assert rules.tier(frequency=3, monetary=Decimal("20000.00"), t=t) == "core"  # 100,000 a year: not above
    assert rules.tier(frequency=3, monetary=Decimal("20000.01"), t=t) == "super_vip"
    assert rules.tier(frequency=3, monetary=Decimal("480.00"), t=t) == "normal"  # 200 a month
    assert rules.tier(frequency=1, monetary=Decimal("479.99"), t=t) == "potential"


# --- RFM groups and segments -----------------------------------------------------------


@pytest.mark.parametrize(
    ("r", "f", "m", "group"),
    [
        (5, 5, 5, "high_value"),
        (4, 4, 4, "high_value"),
        (3, 4, 4, "potential"),
        (4, 4, 3, "potential"),
        (2, 5, 2, "potential"),
        (1, 1, 1, "silent"),
        (2, 2, 2, "silent"),
        (3, 3, 3, "general"),
        (1, 5, 5, "general"),
        (5, 1, 1, "general"),
        (None, None, None, ""),
    ],
)
def test_rfm_group(r, f, m, group):
    assert rules.rfm_group(r, f, m, T) == group


@pytest.mark.parametrize(
    ("r", "f", "m", "segment"),
    [
        (5, 5, 5, "champions"),
        (4, 4, 3, "champions"),  # fm = round(3.5) = 4
        (1, 5, 4, "cant_lose_them"),
        (3, 3, 3, "loyal"),
        (2, 4, 3, "at_risk"),
        (5, 1, 1, "new"),
        (5, 2, 1, "potential_loyalist"),  # fm = round(1.5) = 2
        (4, 1, 1, "promising"),
        (2, 2, 2, "need_attention"),
        (3, 1, 1, "promising"),
        (2, 1, 1, "about_to_sleep"),
        (1, 2, 2, "hibernating"),
        (1, 1, 1, "lost"),
        (None, None, None, ""),
    ],
)
def test_rfm_segment(r, f, m, segment):
    assert rules.rfm_segment(r, f, m, T) == segment


def test_fm_rounds_halves_up():
    assert [rules.fm_score(f, m) for f, m in ((1, 1), (1, 2), (2, 3), (4, 5), (5, 5))] == [1, 2, 3, 5, 5]


def test_first_matching_group_wins_and_unmatched_is_other():
    t = thresholds(rfm_segments=[{"code": "a", "r": [1, 5], "fm": [1, 5]}, {"code": "b", "r": [1, 5], "fm": [1, 5]}])
    assert rules.rfm_segment(3, 3, 3, t) == "a"
    t = thresholds(rfm_segments=[{"code": "a", "r": [5, 5], "fm": [5, 5]}])
    assert rules.rfm_segment(3, 3, 3, t) == "other"


# --- stage ------------------------------------------------------------------------------


def stage(**kw):
    args = {"orders_total": 5, "frequency": 3, "recency_days": 10, "signup_age_days": 400.0, "p_alive": 0.9, "t": T}
    return rules.stage(**{**args, **kw})


def test_stage_boundaries():
    assert stage(orders_total=0, frequency=0, recency_days=None, signup_age_days=30.0, p_alive=None) == "new"
    assert stage(orders_total=0, frequency=0, recency_days=None, signup_age_days=30.01, p_alive=None) == "prospect"
    assert stage(orders_total=0, frequency=0, recency_days=None, signup_age_days=None, p_alive=None) == "prospect"
    assert stage() == "mature"
    assert stage(frequency=2) == "growing"
    assert stage(signup_age_days=29.0) == "new"  # a new sign-up who already bought a lot
    assert stage(recency_days=179) == "mature"
    assert stage(recency_days=180) == "churn_warning"
    assert stage(recency_days=364) == "churn_warning"
    assert stage(recency_days=365) == "churned"
    assert stage(p_alive=0.5) == "mature"
    assert stage(p_alive=0.4999) == "churn_warning"
    assert stage(p_alive=0.15) == "churn_warning"
    assert stage(p_alive=0.1499) == "churned"
    assert stage(p_alive=None, recency_days=10) == "mature"  # no model: inactivity alone
    assert stage(recency_days=400, signup_age_days=5.0) == "churned"  # churn signals win over "new"


def test_stage_follows_mature_min_orders():
    t = thresholds(mature_min_orders=5)
    assert stage(frequency=4, t=t) == "growing"
    assert stage(frequency=5, t=t) == "mature"


# --- operating class ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage_", "tier_", "group", "expected"),
    [
        ("churned", "super_vip", "high_value", "churn_risk"),
        ("churn_warning", "", "", "churn_risk"),
        ("mature", "core", "general", "core_value"),
        ("mature", "normal", "high_value", "core_value"),
        ("mature", "normal", "potential", "potential_growth"),
        ("growing", "potential", "general", "potential_growth"),
        ("new", "", "", "potential_growth"),
        ("mature", "normal", "silent", "silent_to_wake"),
        ("prospect", "", "", "silent_to_wake"),
        ("mature", "active", "general", "active_maintain"),
    ],
)
def test_operating_class(stage_, tier_, group, expected):
    assert rules.operating_class(stage_=stage_, tier_=tier_, group=group) == expected


# --- validation ---------------------------------------------------------------------------


def test_the_default_rule_set_is_valid():
    assert rules.validate_rule_set(rule_set()) == {}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"rfm_window_days": 0}, "rfm_window_days"),
        ({"tier_core_annual": Decimal("100000")}, "tier_core_annual"),  # core >= super VIP
        ({"tier_core_annual": Decimal("120000")}, "tier_core_annual"),
        ({"tier_active_monthly": Decimal("5000")}, "tier_active_monthly"),  # 60,000 a year >= core
        ({"tier_normal_monthly": Decimal("2000")}, "tier_normal_monthly"),  # normal >= active
        ({"tier_normal_monthly": Decimal("-1")}, "tier_normal_monthly"),
        ({"churned_p_alive": 0.5}, "churn_warning_p_alive"),  # churned must be under warning
        ({"churned_p_alive": 0.6}, "churn_warning_p_alive"),
        ({"churn_warning_p_alive": 1.0}, "churn_warning_p_alive"),
        ({"churned_p_alive": 0.0}, "churn_warning_p_alive"),
        ({"warning_inactive_days": 365}, "warning_inactive_days"),
        ({"warning_inactive_days": 0}, "warning_inactive_days"),
        ({"mature_min_orders": 1}, "mature_min_orders"),
    ],
)
def test_validation_rejects_thresholds_that_make_no_sense(changes, field):
    errors = rules.validate_rule_set(rule_set(**changes))
    assert errors.get(field)


@pytest.mark.parametrize(
    ("groups", "fragment"),
    [
        ([], "non-empty list"),
        ("high_value", "non-empty list"),
        ([{"r": [4, 5], "f": [4, 5], "m": [4, 5]}], "needs a 'code'"),
        ([{"code": "", "r": [4, 5], "f": [4, 5], "m": [4, 5]}], "needs a 'code'"),
        ([{"code": "a", "r": [4, 5], "f": [4, 5], "m": [4, 5]}] * 2, "appears twice"),
        ([{"code": "a", "r": [0, 5], "f": [4, 5], "m": [4, 5]}], "1 <= low <= high <= 5"),
        ([{"code": "a", "r": [4, 6], "f": [4, 5], "m": [4, 5]}], "1 <= low <= high <= 5"),
        ([{"code": "a", "r": [5, 4], "f": [4, 5], "m": [4, 5]}], "1 <= low <= high <= 5"),
        ([{"code": "a", "r": [4], "f": [4, 5], "m": [4, 5]}], "1 <= low <= high <= 5"),
        ([{"code": "a", "r": ["4", 5], "f": [4, 5], "m": [4, 5]}], "1 <= low <= high <= 5"),
        ([{"code": "a", "f": [4, 5], "m": [4, 5]}], "[0].r must be"),
        ([{"code": "a", "r": [4, 5], "f": [4, 5], "m": [4, 5], "x": [1, 2]}], "unknown key"),
        ([{"code": "it's", "r": [4, 5], "f": [4, 5], "m": [4, 5]}], "letters, digits"),
        ([{"code": "a" * 21, "r": [4, 5], "f": [4, 5], "m": [4, 5]}], "letters, digits"),
    ],
)
def test_validation_rejects_bad_rfm_group_maps(groups, fragment):
    errors = rules.validate_rule_set(rule_set(rfm_groups=groups))
    assert list(errors) == ["rfm_groups"]
    assert any(fragment in message for message in errors["rfm_groups"]), errors


def test_validation_rejects_bad_rfm_segment_maps():
    errors = rules.validate_rule_set(rule_set(rfm_segments=[{"code": "x", "r": [1, 5], "f": [1, 5]}]))
    assert list(errors) == ["rfm_segments"]
    assert any("unknown key" in m for m in errors["rfm_segments"])
    assert any("fm must be" in m for m in errors["rfm_segments"])


def test_every_valid_code_compiles_to_sql():
    # What validation lets through, the SQL compiler must accept (and the reverse is refused).
    ok = thresholds(rfm_groups=[{"code": "high-value_2", "r": [4, 5], "f": [4, 5], "m": [4, 5]}])
    assert "'high-value_2'" in rules.rfm_group_sql(ok)
    with pytest.raises(ValueError):
        rules.rfm_group_sql(thresholds(rfm_groups=[{"code": "x' OR 1=1 --", "r": [1, 5], "f": [1, 5], "m": [1, 5]}]))


# --- reactivation: one rule, its SQL form checked against it -----------------------------


def test_reactivation_rule():
    assert rules.reactivated("churned", "growing") and rules.reactivated("churn_warning", "new")
    assert not rules.reactivated("churned", "churn_warning") and not rules.reactivated("growing", "mature")
    assert not rules.reactivated(None, "new") and not rules.reactivated("", "mature")
    assert not rules.reactivated("prospect", "new")


def test_the_sql_form_of_reactivation_agrees_with_the_rule_for_every_pair_of_stages(db):
    from django.db import connection

    expr, params = rules.reactivated_sql("x.from_stage", "x.to_stage")
    for from_stage in [None, "", *rules.STAGES]:
        for to_stage in rules.STAGES:
            with connection.cursor() as cur:
                cur.execute(
                    f"SELECT {expr} FROM (SELECT %s AS from_stage, %s AS to_stage) x", [*params, from_stage, to_stage]
                )
                assert bool(cur.fetchone()[0]) is rules.reactivated(from_stage, to_stage), (from_stage, to_stage)

"""Operator-facing names of what the segments app stores and the builder offers,
in the operator's language: the definition fields and comparisons, the built-in
choice values (lifecycle stages, tiers, operating classes from ``models``; RFM
groups and the profile fields' values), the built-in dimensions and the values the
"why" panel explains. The pages, the builder and the panels read them from here."""

from django.utils.translation import gettext_lazy, pgettext_lazy

from .models import OperatingClass, Stage, Tier

FIELD_LABELS = {
    "gender": gettext_lazy("Gender"),
    "city": gettext_lazy("City"),
    "channel": gettext_lazy("Acquisition channel"),
    "timezone": gettext_lazy("Timezone"),
    "signup_at": gettext_lazy("Signed up"),
    "birthday_month": gettext_lazy("Birthday month"),
    "do_not_contact": gettext_lazy("Do not contact"),
    "consent_push": gettext_lazy("Consent: app push"),
    "consent_sms": gettext_lazy("Consent: SMS"),
    "consent_email": gettext_lazy("Consent: email"),
    "consent_wechat": gettext_lazy("Consent: WeChat"),
    "consent_in_app": gettext_lazy("Consent: in-app"),
    "r_score": gettext_lazy("R score (1–5)"),
    "f_score": gettext_lazy("F score (1–5)"),
    "m_score": gettext_lazy("M score (1–5)"),
    "recency_days": gettext_lazy("Days since last order"),
    "frequency": gettext_lazy("Paid orders in the RFM window"),
    "monetary": gettext_lazy("Paid amount in the RFM window"),
    "rfm_group": gettext_lazy("RFM group"),
    "rfm_segment": gettext_lazy("RFM segment"),
    "tier": gettext_lazy("Value tier"),
    "stage": gettext_lazy("Lifecycle stage"),
    "operating_class": gettext_lazy("Operating class"),
    "p_alive": gettext_lazy("P(alive)"),
    "clv": gettext_lazy("Predicted CLV"),
    "points_balance": gettext_lazy("Points balance"),
    "level": gettext_lazy("Level"),
    "tag": gettext_lazy("Tag"),
    "event": gettext_lazy("Did an event"),
    "orders": gettext_lazy("Paid orders in a date range"),
    "community": gettext_lazy("Member of community group"),
}

OP_LABELS = {
    "eq": gettext_lazy("is"),
    "ne": gettext_lazy("is not"),
    "gt": gettext_lazy("greater than"),
    "gte": gettext_lazy("at least"),
    "lt": gettext_lazy("less than"),
    "lte": gettext_lazy("at most"),
    "between": gettext_lazy("between"),
    "in": gettext_lazy("is one of"),
    "not_in": gettext_lazy("is none of"),
    "contains": gettext_lazy("contains"),
    "has": gettext_lazy("has"),
    "not_has": gettext_lazy("does not have"),
}

# Operator-facing names of the built-in choice values; anything else shows its code.
CHOICE_LABELS = {
    **dict(Stage.choices),
    **dict(Tier.choices),
    **dict(OperatingClass.choices),
    "high_value": gettext_lazy("high value"),
    "potential": gettext_lazy("potential"),
    "silent": gettext_lazy("silent"),
    "general": gettext_lazy("general"),
    "unknown": gettext_lazy("unknown"),
    # The finer RFM map's codes (default_rfm_segments); a code an admin adds shows as itself.
    "champions": pgettext_lazy("RFM segment", "champions"),
    "cant_lose_them": pgettext_lazy("RFM segment", "can't lose them"),
    "loyal": pgettext_lazy("RFM segment", "loyal"),
    "at_risk": pgettext_lazy("RFM segment", "at risk"),
    "potential_loyalist": pgettext_lazy("RFM segment", "potential loyalist"),
    "promising": pgettext_lazy("RFM segment", "promising"),
    "need_attention": pgettext_lazy("RFM segment", "need attention"),
    "about_to_sleep": pgettext_lazy("RFM segment", "about to sleep"),
    "hibernating": pgettext_lazy("RFM segment", "hibernating"),
    "lost": pgettext_lazy("RFM segment", "lost"),
    "female": gettext_lazy("female"),
    "male": gettext_lazy("male"),
    "other": gettext_lazy("other"),
}

# The recompute's phases (SegmentRun.phases keys), as the dashboard and the admin show them.
PHASE_LABELS = {
    "aggregate": gettext_lazy("Aggregate orders"),
    "aggregate_wall": gettext_lazy("Aggregate orders (wall clock)"),
    "model_fit": gettext_lazy("Fit the churn model"),
    "model_predict": gettext_lazy("Predict P(alive) and CLV"),
    "score": gettext_lazy("Score customers"),
    "patch": gettext_lazy("Patch changed customers"),
    "publish": gettext_lazy("Publish"),
    "custom_segments": gettext_lazy("Custom segments"),
}

BUILTIN_DIMENSION_LABELS = {
    "stage": gettext_lazy("Lifecycle stage"),
    "tier": gettext_lazy("Value tier"),
    "class": gettext_lazy("Operating class"),
    "rfm": gettext_lazy("RFM group"),
    "rfm-segment": gettext_lazy("RFM segment"),
}

EXPLAIN_VALUE_LABELS = {
    "recency_days": gettext_lazy("Days since last paid order"),
    "frequency_in_window": gettext_lazy("Paid orders in the window"),
    "monetary_in_window": gettext_lazy("Paid amount in the window"),
    "orders_total": gettext_lazy("Paid orders, all time"),
    "annual_spend": gettext_lazy("Annual spend"),
    "monthly_spend": gettext_lazy("Monthly spend"),
    "r_score": gettext_lazy("R score"),
    "f_score": gettext_lazy("F score"),
    "m_score": gettext_lazy("M score"),
    "p_alive": gettext_lazy("P(alive)"),
}


def label(value: str | None) -> str:
    if not value:
        return ""
    return str(CHOICE_LABELS.get(value, value.replace("_", " ")))


def phase_label(code: str) -> str:
    return str(PHASE_LABELS.get(code, code.replace("_", " ")))


def segment_chip_label(slug: str, names: dict[str, str] | None = None) -> str:
    """A segment chip's text: ``生命周期阶段：成熟期`` for a built-in slug like
    ``stage-mature``, the segment's name for a custom one (from ``names``), else the slug."""
    if names and slug in names:
        return names[slug]
    # Longest prefix first: "rfm-segment-x" is not "rfm-" + "segment-x".
    for prefix in sorted(BUILTIN_DIMENSION_LABELS, key=len, reverse=True):
        if slug.startswith(f"{prefix}-"):
            value = slug[len(prefix) + 1 :]
            if value in CHOICE_LABELS or value == "other":
                return f"{BUILTIN_DIMENSION_LABELS[prefix]}: {label(value)}"
    return slug


def size_key_label(key: str) -> str:
    """A size snapshot's key (``stage:mature``, ``rfm_segment:champions``, ``custom:<slug>``)
    as the operator reads it: ``生命周期阶段: 成熟期``; a custom segment keeps its slug."""
    column, _sep, value = key.partition(":")
    if column in FIELD_LABELS and column not in ("custom",):
        return f"{FIELD_LABELS[column]}: {label(value)}"
    return value or key

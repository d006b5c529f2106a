"""Reads for segments: the published run's scores, built-in and custom segments,
members, history (sizes, stage changes, transition matrix), previews and the
"why" of a customer's labels."""

from datetime import datetime

from django.db.models import Count, DateTimeField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import NotFound
from users.models import Customer

from . import rules
from .definitions import compile_definition
from .labels import segment_chip_label
from .models import (
    CustomerScore,
    OperatingClass,
    Segment,
    SegmentMembership,
    SegmentRun,
    SegmentSizeSnapshot,
    Stage,
    StageChange,
    Tier,
)


def builtin_dimensions(run: SegmentRun | None) -> dict[str, tuple[str, dict[str, str]]]:
    """Built-in segments: one per value of each dimension (slug prefix → column, values).
    The RFM maps come from the rule set that produced the run."""
    rule_set = run.rule_set if run is not None else None
    groups = [g["code"] for g in rule_set.rfm_groups] + ["general"] if rule_set else []
    fine = [g["code"] for g in rule_set.rfm_segments] + ["other"] if rule_set else []
    return {
        "stage": ("stage", dict(Stage.choices)),
        "tier": ("tier", dict(Tier.choices)),
        "class": ("operating_class", dict(OperatingClass.choices)),
        "rfm": ("rfm_group", {code: code.replace("_", " ") for code in groups}),
        "rfm-segment": ("rfm_segment", {code: code.replace("_", " ") for code in fine}),
    }


def run_published() -> SegmentRun | None:
    return SegmentRun.objects.filter(status=SegmentRun.Status.PUBLISHED).order_by("-as_of", "-published_at").first()


def run_latest() -> SegmentRun | None:
    return SegmentRun.objects.order_by("-started_at").first()


def customer_score(*, customer: Customer, run: SegmentRun | None = None) -> CustomerScore | None:
    run = run or run_published()
    if run is None:
        return None
    return CustomerScore.objects.filter(run=run, customer=customer).first()


def customer_segment_slugs(*, customer: Customer, score: CustomerScore | None) -> list[str]:
    slugs = []
    if score is not None:
        for prefix, (column, _labels) in builtin_dimensions(None).items():
            value = getattr(score, column)
            if value:
                slugs.append(f"{prefix}-{value}")
    slugs += list(
        Segment.objects.filter(memberships__customer=customer, is_active=True)
        .order_by("slug")
        .values_list("slug", flat=True)
    )
    return slugs


def customer_profile_segments(*, customer: Customer) -> dict:
    """The profile's ``rfm``, ``tier``, ``stage``, ``churn`` and ``segments``."""
    score = customer_score(customer=customer)
    if score is None:
        return {
            "rfm": None,
            "tier": None,
            "stage": None,
            "churn": None,
            "segments": customer_segment_slugs(customer=customer, score=None),
        }
    return {
        "rfm": {
            "recency_days": score.recency_days,
            "frequency": score.frequency,
            "monetary": str(score.monetary),
            "r_score": score.r_score,
            "f_score": score.f_score,
            "m_score": score.m_score,
            "group": score.rfm_group or None,
            "segment": score.rfm_segment or None,
        },
        "tier": score.tier or None,
        "stage": score.stage or None,
        "operating_class": score.operating_class or None,
        "churn": None
        if score.p_alive is None
        else {
            "p_alive": round(score.p_alive, 4),
            "expected_purchases_90d": round(score.expected_purchases_90d, 4),
            "expected_order_value": str(score.expected_order_value),
            "clv": str(score.clv),
        },
        "segments": customer_segment_slugs(customer=customer, score=score),
    }


def customer_explain(*, customer: Customer) -> dict | None:
    """Why the customer has their stage, tier and groups: rule version, thresholds, values."""
    score = customer_score(customer=customer)
    if score is None:
        return None
    run = score.run if score.run_id else None
    rule_set = run.rule_set
    t = rules.Thresholds.of(rule_set)
    annual = float(score.monetary) * 365 / t.rfm_window_days
    return {
        "run": run.pk,
        "as_of": run.as_of,
        "rule_version": rule_set.version,
        "values": {
            "recency_days": score.recency_days,
            "frequency_in_window": score.frequency,
            "monetary_in_window": str(score.monetary),
            "orders_total": score.orders_total,
            "annual_spend": round(annual, 2),
            "monthly_spend": round(annual / 12, 2),
            "r_score": score.r_score,
            "f_score": score.f_score,
            "m_score": score.m_score,
            "p_alive": score.p_alive,
        },
        "thresholds": {
            "rfm_window_days": t.rfm_window_days,
            "tier_super_vip_annual": str(t.tier_super_vip_annual),
            "tier_core_annual": str(t.tier_core_annual),
            "tier_active_monthly": str(t.tier_active_monthly),
            "tier_normal_monthly": str(t.tier_normal_monthly),
            "new_days": t.new_days,
            "mature_min_orders": t.mature_min_orders,
            "churn_warning_p_alive": t.churn_warning_p_alive,
            "churned_p_alive": t.churned_p_alive,
            "warning_inactive_days": t.warning_inactive_days,
            "churned_inactive_days": t.churned_inactive_days,
        },
        "labels": {
            "stage": score.stage,
            "tier": score.tier,
            "rfm_group": score.rfm_group,
            "rfm_segment": score.rfm_segment,
            "operating_class": score.operating_class,
        },
        "reasons": _reasons(score, t, annual),
    }


def _reasons(score: CustomerScore, t: rules.Thresholds, annual: float) -> list[str]:
    reasons = []
    if score.orders_total == 0:
        reasons.append(_("No paid order yet."))
    else:
        if score.recency_days is not None and score.recency_days >= t.churned_inactive_days:
            reasons.append(
                _("No order for %(d)s days (churned from %(t)s).")
                % {"d": score.recency_days, "t": t.churned_inactive_days}
            )
        elif score.recency_days is not None and score.recency_days >= t.warning_inactive_days:
            reasons.append(
                _("No order for %(d)s days (warning from %(t)s).")
                % {"d": score.recency_days, "t": t.warning_inactive_days}
            )
        if score.p_alive is not None:
            reasons.append(
                _("P(alive) %(p).2f against churn-warning under %(w).2f and churned under %(c).2f.")
                % {"p": score.p_alive, "w": t.churn_warning_p_alive, "c": t.churned_p_alive}
            )
        reasons.append(
            _("%(f)s paid orders in the %(w)s-day window (mature from %(m)s).")
            % {"f": score.frequency, "w": t.rfm_window_days, "m": t.mature_min_orders}
        )
        reasons.append(_("Annual spend %(a).2f, monthly %(mo).2f.") % {"a": annual, "mo": annual / 12})
    return reasons


def stage_history(*, customer: Customer, limit: int = 50) -> QuerySet[StageChange]:
    return StageChange.objects.filter(customer=customer).order_by("-at", "-id")[:limit]


def segment_catalogue() -> list[dict]:
    """Built-in segments of the published run and every custom segment, with sizes."""
    run = run_published()
    out = []
    if run is not None:
        sizes = {row["key"]: row["size"] for row in SegmentSizeSnapshot.objects.filter(run=run).values("key", "size")}
        for prefix, (column, labels) in builtin_dimensions(run).items():
            for value, label in labels.items():
                out.append(
                    {
                        "slug": f"{prefix}-{value}",
                        "name": f"{prefix}: {label}",
                        "kind": "builtin",
                        "size": sizes.get(f"{column}:{value}", 0),
                        "computed_at": run.as_of,
                    }
                )
    for segment in Segment.objects.filter(is_active=True).order_by("name"):
        out.append(
            {
                "slug": segment.slug,
                "name": segment.name,
                "kind": segment.kind,
                "size": segment.size,
                "computed_at": segment.computed_at,
            }
        )
    return out


def segment_names() -> dict[str, str]:
    """Every segment of the catalogue, slug → its name as an operator reads it, in their
    language (``生命周期阶段: 成熟期`` for ``stage-mature``; a custom segment's own name)."""
    catalogue = segment_catalogue()
    custom = {row["slug"]: row["name"] for row in catalogue if row["kind"] != "builtin"}
    return {row["slug"]: segment_chip_label(row["slug"], custom) for row in catalogue}


def segment_get(*, slug: str) -> Segment:
    segment = Segment.objects.filter(slug=slug).first()
    if segment is None:
        raise NotFound(f"No segment {slug!r}.")
    return segment


def segment_members(*, slug: str) -> QuerySet[Customer]:
    """Customers of a segment (built-in or custom), annotated with ``member_since``."""
    run = run_published()
    # Longest prefix first: "rfm-segment-x" is not "rfm-" + "segment-x".
    for prefix, (column, labels) in sorted(builtin_dimensions(run).items(), key=lambda kv: -len(kv[0])):
        if slug.startswith(f"{prefix}-") and slug[len(prefix) + 1 :] in labels:
            if run is None:  # a built-in segment before the first recompute: no members yet
                return Customer.objects.none().annotate(member_since=Value(None, output_field=DateTimeField()))
            ids = CustomerScore.objects.filter(run=run, **{column: slug[len(prefix) + 1 :]}).values("customer_id")
            return Customer.objects.filter(pk__in=ids).annotate(member_since=Value(run.as_of))
    segment = segment_get(slug=slug)
    since = SegmentMembership.objects.filter(segment=segment, customer=OuterRef("pk")).values("since")[:1]
    return Customer.objects.filter(segment_memberships__segment=segment).annotate(member_since=Subquery(since))


def customer_ids_in(*, stage: str | None = None, tier: str | None = None, segment: str | None = None):
    """A subquery of customer ids for the customer list's filters."""
    qs = Customer.objects.all()
    run = run_published()
    if stage or tier:
        if run is None:
            return Customer.objects.none().values("id")
        scores = CustomerScore.objects.filter(run=run)
        if stage:
            scores = scores.filter(stage=stage)
        if tier:
            scores = scores.filter(tier=tier)
        qs = qs.filter(pk__in=scores.values("customer_id"))
    if segment:
        qs = qs.filter(pk__in=segment_members(slug=segment).values("id"))
    return qs.values("id")


def segment_preview(*, definition: dict, sample: int = 20) -> dict:
    """Size and a sample of a definition against the published run (validates it first)."""
    run = run_published()
    q = compile_definition(definition, run_id=run.pk if run else None)
    qs = Customer.objects.filter(q)
    return {
        "size": qs.count(),
        "sample": list(qs.order_by("id").values_list("external_id", flat=True)[:sample]),
        "run": run.pk if run else None,
    }


def size_history(*, key: str, start: datetime | None = None, end: datetime | None = None) -> list[dict]:
    qs = SegmentSizeSnapshot.objects.filter(key=key)
    if start:
        qs = qs.filter(as_of__gte=start)
    if end:
        qs = qs.filter(as_of__lte=end)
    return list(qs.order_by("as_of").values("as_of", "size"))


def transition_matrix(*, start: datetime, end: datetime) -> dict[str, dict[str, int]]:
    """How many customers were in stage A at ``start`` and in stage B at ``end`` — one
    GROUP BY over each customer's last stage change up to each date."""

    def stage_at(when):
        return Subquery(
            StageChange.objects.filter(customer=OuterRef("pk"), at__lte=when)
            .order_by("-at", "-id")
            .values("to_stage")[:1]
        )

    rows = (
        Customer.objects.annotate(s0=Coalesce(stage_at(start), Value("")), s1=Coalesce(stage_at(end), Value("")))
        .exclude(s1="")
        .values("s0", "s1")
        .annotate(n=Count("id"))
        .order_by()
    )
    matrix: dict[str, dict[str, int]] = {}
    for row in rows:
        matrix.setdefault(row["s0"] or "none", {})[row["s1"]] = row["n"]
    return matrix


def recompute_progress() -> dict | None:
    run = run_latest()
    if run is None:
        return None
    return {
        "run": run.pk,
        "kind": run.kind,
        "status": run.status,
        "as_of": run.as_of,
        "started_at": run.started_at,
        "heartbeat_at": run.heartbeat_at or run.started_at,
        "finished_at": run.finished_at,
        "chunks_done": run.chunks_done,
        "chunks_total": run.chunks_total,
        "phases": run.phases,
        "counts": run.counts,
        "error": run.error,
        "now": timezone.now(),
    }


def runs_recent(*, limit: int = 10) -> list[SegmentRun]:
    """The latest recomputes (full and incremental), newest first (the dashboard's job list)."""
    return list(SegmentRun.objects.order_by("-started_at", "-id")[:limit])

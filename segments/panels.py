"""The segments pieces other apps' pages show: the customer 360 page's "Segments"
section and the dashboard's "Segments" card. Each returns the context its template
(``segments/_customer_panel.html``, ``segments/_dashboard_card.html``) reads."""

from . import selectors
from .labels import EXPLAIN_VALUE_LABELS, label, phase_label, segment_chip_label
from .models import RuleSet, Segment, SegmentRun

# The recompute's phases in the order they run (JSON objects keep no order on PostgreSQL).
PHASE_ORDER = ["aggregate", "aggregate_wall", "model_fit", "model_predict", "score", "patch", "publish"]


def customer_panel_context(*, customer, profile: dict) -> dict:
    """The 360 page's "Segments" section: labels, scores, the "why" (rule version,
    thresholds, values, reasons) and the stage history. ``profile`` is what
    ``users.selectors.customer_profile_sections`` returned, so nothing is read twice."""
    if profile.get("rfm") is None:
        # Not in the published run: no "why", and no stage was ever recorded (the
        # history starts at a customer's first scored run), so spare the queries.
        explain, changes = None, []
    else:
        explain = selectors.customer_explain(customer=customer)
        changes = selectors.stage_history(customer=customer)
    history = [
        {
            "at": change.at,
            "from": label(change.from_stage),
            "to": label(change.to_stage),
            "to_code": change.to_stage,
            "reactivated": change.reactivated,
        }
        for change in changes
    ]
    why = None
    if explain is not None:
        why = {
            "rule_version": explain["rule_version"],
            "run": explain["run"],
            "as_of": explain["as_of"],
            "values": [(EXPLAIN_VALUE_LABELS.get(k, k), "—" if v is None else v) for k, v in explain["values"].items()],
            "thresholds": [(RuleSet._meta.get_field(k).verbose_name, v) for k, v in explain["thresholds"].items()],
            "reasons": explain["reasons"],
        }
    rfm = profile.get("rfm") or None
    return {
        "stage": label(profile.get("stage")),
        "stage_code": profile.get("stage") or "",
        "tier": label(profile.get("tier")),
        "operating_class": label(profile.get("operating_class")),
        "rfm": rfm,
        "rfm_group": label((rfm or {}).get("group")),
        "rfm_segment": label((rfm or {}).get("segment")),
        "churn": profile.get("churn") or None,
        "segments": _segment_chips(profile.get("segments") or []),
        "why": why,
        "history": history,
    }


def _segment_chips(slugs: list[str]) -> list[dict]:
    """``[{"slug", "label"}]``: built-in segments by dimension and value, custom ones by name."""
    custom = [slug for slug in slugs if segment_chip_label(slug) == slug]
    names = dict(Segment.objects.filter(slug__in=custom).values_list("slug", "name")) if custom else {}
    return [{"slug": slug, "label": segment_chip_label(slug, names)} for slug in slugs]


def dashboard_card_context() -> dict:
    """The dashboard's "Segments" card: the latest recompute's progress and the
    published run's stage sizes."""
    progress = selectors.recompute_progress()
    if progress is not None:
        total = progress["chunks_total"] or 0
        progress = {
            **progress,
            "status_label": SegmentRun.Status(progress["status"]).label,
            "kind_label": SegmentRun.Kind(progress["kind"]).label,
            "percent": round(100 * progress["chunks_done"] / total) if total else 0,
            "phases_list": [
                (name, phase_label(name), seconds)
                for name, seconds in sorted(
                    (progress["phases"] or {}).items(),
                    key=lambda kv: (PHASE_ORDER.index(kv[0]) if kv[0] in PHASE_ORDER else len(PHASE_ORDER), kv[0]),
                )
            ],
        }
    stage_sizes = []
    for row in selectors.segment_catalogue():
        if row["kind"] == "builtin" and row["slug"].startswith("stage-"):
            stage_sizes.append({"slug": row["slug"], "label": label(row["slug"][len("stage-") :]), "size": row["size"]})
    total = sum(r["size"] for r in stage_sizes)
    for r in stage_sizes:
        r["percent"] = round(100 * r["size"] / total) if total else 0
    return {"progress": progress, "stage_sizes": stage_sizes, "stage_total": total}

"""The segments pieces other apps' pages show: the customer 360 page's "Segments"
section and the dashboard's "Segments" card. Each returns the context its template
(``segments/_customer_panel.html``, ``segments/_dashboard_card.html``) reads."""

from django.utils import timezone

from . import selectors
from .labels import EXPLAIN_VALUE_LABELS, label, phase_label, segment_chip_label
from .models import RuleSet, Segment, SegmentRun

# The recompute's phases in the order they run (JSON objects keep no order on PostgreSQL).
PHASE_ORDER = [
    "aggregate",
    "aggregate_wall",
    "model_fit",
    "model_predict",
    "score",
    "patch",
    "custom_segments",
    "publish",
]
# What an incremental run goes through; it has no chunks, so its progress is counted in phases.
INCREMENTAL_PHASES = ["aggregate", "model_predict", "patch", "custom_segments"]
# A recompute's status as the job list's badge shows it.
RUN_BADGES = {
    SegmentRun.Status.RUNNING: "running",
    SegmentRun.Status.PUBLISHED: "succeeded",
    SegmentRun.Status.APPLIED: "succeeded",
    SegmentRun.Status.SUPERSEDED: "succeeded",
    SegmentRun.Status.FAILED: "failed",
}


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
    from .services import STALE_AFTER

    progress = selectors.recompute_progress()
    if progress is not None:
        running = progress["status"] == SegmentRun.Status.RUNNING
        phases = progress["phases"] or {}
        # An incremental run has no chunks: its progress is the phases it has finished.
        by_phases = progress["kind"] == SegmentRun.Kind.INCREMENTAL or not progress["chunks_total"]
        if by_phases:
            done = len([p for p in phases if p in INCREMENTAL_PHASES]) if running else len(phases)
            total = len(INCREMENTAL_PHASES) if running else len(phases)
        else:
            done, total = progress["chunks_done"], progress["chunks_total"]
        progress = {
            **progress,
            "status_label": SegmentRun.Status(progress["status"]).label,
            "kind_label": SegmentRun.Kind(progress["kind"]).label,
            "by_phases": by_phases,
            "steps_done": done,
            "steps_total": total,
            "percent": (round(100 * done / total) if total else 0) if running else 100,
            # Polled by static/js/dashboard.js while the run goes on (a stale one is not going on).
            "live": running and progress["heartbeat_at"] > timezone.now() - STALE_AFTER,
            "phases_list": [
                {"key": key, "label": str(phase_label(key)), "seconds": seconds}
                for key, seconds in sorted(
                    phases.items(),
                    key=lambda kv: (PHASE_ORDER.index(kv[0]) if kv[0] in PHASE_ORDER else len(PHASE_ORDER), kv[0]),
                )
            ],
        }
        if progress["status"] == SegmentRun.Status.FAILED:
            progress["percent"] = round(100 * done / total) if total else 0
    stage_sizes = []
    for row in selectors.segment_catalogue():
        if row["kind"] == "builtin" and row["slug"].startswith("stage-"):
            stage_sizes.append({"slug": row["slug"], "label": label(row["slug"][len("stage-") :]), "size": row["size"]})
    total = sum(r["size"] for r in stage_sizes)
    for r in stage_sizes:
        r["percent"] = round(100 * r["size"] / total) if total else 0
    return {"progress": progress, "stage_sizes": stage_sizes, "stage_total": total}


def recompute_runs_for_job_list(*, limit: int = 10) -> list[dict]:
    """The latest recomputes as rows of the dashboard's "last job runs" list (the
    periodic jobs' ``core.JobRun`` rows are the others): a recompute is recorded once,
    as its ``SegmentRun``, which has its kind, chunks and phases."""
    rows = []
    for run in selectors.runs_recent(limit=limit):
        finished = run.finished_at or run.published_at
        rows.append(
            {
                "job": f"segments.recompute_{run.kind}",
                "kind": run.kind,
                "run": run.pk,
                "status": run.status,
                "badge": RUN_BADGES.get(run.status, run.status),
                "status_label": SegmentRun.Status(run.status).label,
                "started_at": run.started_at,
                "duration_seconds": (finished - run.started_at).total_seconds() if finished else None,
            }
        )
    return rows

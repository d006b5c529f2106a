from decimal import Decimal

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy

from communities.panels_alerts import alerts_card_context
from communities.panels_calendar import due_posts_card
from core.charts import Canvas, nice_max, polyline
from feedback.selectors.reports import feedback_summary
from segments.panels import dashboard_card_context as segments_card_context

from . import selectors

# Chart canvas in SVG user units; the <svg> scales to its container width.
CANVAS = Canvas(width=960, height=260, pad_left=44, pad_right=64, pad_top=16, pad_bottom=28)


def daily_chart(series: list[dict], *, partial_last: bool = True) -> dict:
    """Geometry for the inline SVG chart: bars for new customers (left axis) and a
    line for revenue (right axis). Pure arithmetic over at most a few dozen points.

    The last day is today, still going (``partial_last``): its bar is drawn hatched and
    the line's last stretch dashed, labelled "today so far", so a low value there reads
    as a day not over rather than a drop."""
    c = CANVAS
    bottom = c.bottom
    n = max(len(series), 1)
    slot = c.plot_w / n
    max_new = nice_max(max((row["new_customers"] for row in series), default=0))
    max_rev = nice_max(float(max((row["revenue"] for row in series), default=Decimal("0"))))

    bars, points = [], []
    for i, row in enumerate(series):
        x = c.pad_left + i * slot
        h = c.height_of(row["new_customers"], max_new)
        bars.append(
            {
                "x": round(x + slot * 0.15, 1),
                "y": round(bottom - h, 1),
                "w": round(slot * 0.7, 1),
                "h": round(h, 1),
                "row": row,
            }
        )
        points.append((round(x + slot / 2, 1), round(c.y(float(row["revenue"]), max_rev), 1)))

    ticks = []
    for fraction in (0, 0.5, 1):
        y = round(bottom - c.plot_h * fraction, 1)
        new_label = max_new * fraction
        ticks.append(
            {
                "y": y,
                "left": int(new_label) if new_label == int(new_label) else new_label,
                "right": int(max_rev * fraction),
            }
        )
    x_labels = [
        {"x": round(c.pad_left + i * slot + slot / 2, 1), "label": row["day"].strftime("%m-%d")}
        for i, row in enumerate(series)
        if i % 5 == 0 or i == len(series) - 1
    ]
    partial = partial_last and len(series) > 1
    if partial:
        bars[-1]["partial"] = True
    return {
        **c.frame(),
        "bars": bars,
        "line": polyline(points[:-1] if partial else points),
        "line_partial": polyline(points[-2:]) if partial else "",
        "partial_label": {"x": points[-1][0], "y": c.pad_top} if partial else None,
        "dots": [{"x": x, "y": y, "row": row} for (x, y), row in zip(points, series, strict=True)],
        "ticks": ticks,
        "x_labels": x_labels,
    }


# The periodic jobs by name, in the operator's language; a job not listed shows its name.
JOB_LABELS = {
    "users.order_stats_refresh_all": gettext_lazy("Order statistics refresh"),
    "incentives.points_expire": gettext_lazy("Points expiry"),
    "incentives.levels_refresh": gettext_lazy("Levels refresh"),
    "incentives.rules_backfill": gettext_lazy("Points backfill (earning rules)"),
    "segments.recompute_full": gettext_lazy("Segment recompute (full)"),
    "segments.recompute_incremental": gettext_lazy("Segment recompute (incremental)"),
    "feedback.sla_escalation_sweep": gettext_lazy("SLA escalation sweep"),
    "feedback.themes_suggest": gettext_lazy("Feedback themes"),
    "communities.health_rollup_nightly": gettext_lazy("Group health roll-up (nightly)"),
    "communities.health_rollup_range": gettext_lazy("Group health roll-up (date range)"),
}


def job_rows(limit: int = 10) -> list[dict]:
    return [
        {**row, "label": str(JOB_LABELS.get(row["job"], row["job"]))} for row in selectors.job_list_recent(limit=limit)
    ]


@login_required
def segments_card(request):
    """The dashboard's "Segments" card alone: ``static/js/dashboard.js`` fetches it every
    few seconds while a recompute runs and swaps it in."""
    response = render(request, "segments/_dashboard_card.html", {"segments_card": segments_card_context()})
    response["Cache-Control"] = "no-store"
    return response


@login_required
def home(request):
    now = timezone.now()
    series = selectors.dashboard_daily_series(now=now)
    kpis = selectors.dashboard_kpis(now=now)
    percent = {key: None if kpis[key] is None else kpis[key] * 100 for key in ("repeat_purchase_rate", "stickiness")}
    return render(
        request,
        "dashboards/home.html",
        {
            "kpis": kpis,
            "percent": percent,
            "series": series,
            "chart": daily_chart(series),
            "job_runs": job_rows(limit=10),
            "segments_card": segments_card_context(),
            # The queue's figures are for those who may see tickets.
            "feedback_card": feedback_summary(now=now) if request.user.has_perm("feedback.view_ticket") else None,
            # Today's posts of the user's community groups (None: no calendar for them).
            "calendar_card": due_posts_card(request.user, now=now),
            # Open keyword alerts of the groups the user may see (None: no card).
            "alerts_card": alerts_card_context(viewer=request.user),
            "currency": settings.OPS_CURRENCY,
            "display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE,
            "now": now,
        },
    )

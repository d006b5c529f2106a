from decimal import Decimal

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone

from segments.panels import dashboard_card_context as segments_card_context

from . import selectors

# Chart canvas in SVG user units; the <svg> scales to its container width.
CHART_WIDTH, CHART_HEIGHT = 960, 260
CHART_PAD_LEFT, CHART_PAD_RIGHT, CHART_PAD_TOP, CHART_PAD_BOTTOM = 44, 64, 16, 28


def _nice_max(value: float) -> float:
    """The smallest 1/2/5 x 10^n at or above ``value`` so axis labels read cleanly."""
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def daily_chart(series: list[dict]) -> dict:
    """Geometry for the inline SVG chart: bars for new customers (left axis) and a
    line for revenue (right axis). Pure arithmetic over at most a few dozen points."""
    plot_w = CHART_WIDTH - CHART_PAD_LEFT - CHART_PAD_RIGHT
    plot_h = CHART_HEIGHT - CHART_PAD_TOP - CHART_PAD_BOTTOM
    bottom = CHART_PAD_TOP + plot_h
    n = max(len(series), 1)
    slot = plot_w / n
    max_new = _nice_max(max((row["new_customers"] for row in series), default=0))
    max_rev = _nice_max(float(max((row["revenue"] for row in series), default=Decimal("0"))))

    bars, points = [], []
    for i, row in enumerate(series):
        x = CHART_PAD_LEFT + i * slot
        h = plot_h * row["new_customers"] / max_new
        bars.append({
            "x": round(x + slot * 0.15, 1), "y": round(bottom - h, 1),
            "w": round(slot * 0.7, 1), "h": round(h, 1), "row": row,
        })
        points.append((round(x + slot / 2, 1), round(bottom - plot_h * float(row["revenue"]) / max_rev, 1)))

    ticks = []
    for fraction in (0, 0.5, 1):
        y = round(bottom - plot_h * fraction, 1)
        new_label = max_new * fraction
        ticks.append({"y": y, "left": int(new_label) if new_label == int(new_label) else new_label,
                      "right": int(max_rev * fraction)})
    x_labels = [
        {"x": round(CHART_PAD_LEFT + i * slot + slot / 2, 1), "label": row["day"].strftime("%m-%d")}
        for i, row in enumerate(series) if i % 5 == 0 or i == len(series) - 1
    ]
    return {
        "width": CHART_WIDTH, "height": CHART_HEIGHT,
        "left": CHART_PAD_LEFT, "right": CHART_WIDTH - CHART_PAD_RIGHT,
        "top": CHART_PAD_TOP, "bottom": bottom,
        "bars": bars,
        "line": " ".join(f"{x},{y}" for x, y in points),
        "dots": [{"x": x, "y": y, "row": row} for (x, y), row in zip(points, series, strict=True)],
        "ticks": ticks, "x_labels": x_labels,
        "label_y": bottom + 18,
    }


@login_required
def home(request):
    now = timezone.now()
    series = selectors.dashboard_daily_series(now=now)
    kpis = selectors.dashboard_kpis(now=now)
    percent = {
        key: None if kpis[key] is None else kpis[key] * 100 for key in ("repeat_purchase_rate", "stickiness")
    }
    return render(request, "dashboards/home.html", {
        "kpis": kpis,
        "percent": percent,
        "series": series,
        "chart": daily_chart(series),
        "job_runs": selectors.job_runs_recent(limit=10),
        "segments_card": segments_card_context(),
        "currency": settings.OPS_CURRENCY,
        "display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE,
        "now": now,
    })

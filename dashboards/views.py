from decimal import Decimal

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone

from core.charts import Canvas, nice_max, polyline
from segments.panels import dashboard_card_context as segments_card_context

from . import selectors

# Chart canvas in SVG user units; the <svg> scales to its container width.
CANVAS = Canvas(width=960, height=260, pad_left=44, pad_right=64, pad_top=16, pad_bottom=28)


def daily_chart(series: list[dict]) -> dict:
    """Geometry for the inline SVG chart: bars for new customers (left axis) and a
    line for revenue (right axis). Pure arithmetic over at most a few dozen points."""
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
    return {
        **c.frame(),
        "bars": bars,
        "line": polyline(points),
        "dots": [{"x": x, "y": y, "row": row} for (x, y), row in zip(points, series, strict=True)],
        "ticks": ticks,
        "x_labels": x_labels,
    }


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
            "job_runs": selectors.job_runs_recent(limit=10),
            "segments_card": segments_card_context(),
            "currency": settings.OPS_CURRENCY,
            "display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE,
            "now": now,
        },
    )

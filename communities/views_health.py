"""The group health pages: one group's trends over 7/30/90 days (inline SVG drawn from
the app's own figures, ``core.charts``), the comparison across the user's groups
(sortable), and an on-demand roll-up of a range of days for a group one manages.

Access as everywhere in communities: a group the user may not see is a 404; the
roll-up needs the ``manage`` right (403 otherwise). A bad range (reversed, over 366
days, in the future) is refused with the service's message and queues nothing."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from kombu.exceptions import OperationalError

from core.charts import Canvas, nice_max, polyline
from core.errors import ApplicationError

from . import access
from .forms_health import RollupForm
from .selectors import health as selectors
from .services import health as services
from .tasks.health import health_rollup_range_task
from .views_access import page_group as _group

CANVAS = Canvas(width=960, height=240, pad_left=44, pad_right=56, pad_top=16, pad_bottom=28)
# The rate lines' colours (the legend reads the same ones).
RATE_LINES = (
    ("leave_rate", "#c0392b"),
    ("checkin_rate", "#2f6fdf"),
    ("activity_rate", "#2e9e5b"),
)


RATES = ("leave_rate", "checkin_rate", "activity_rate")


def column_labels() -> dict[str, str]:
    return {
        "members": _("Members"),
        "messages": _("Messages"),
        "active_members": _("Active members"),
        "joins": _("Joins"),
        "leaves": _("Leaves"),
        "leave_rate": _("Leave rate"),
        "checkins": _("Check-ins"),
        "checkin_rate": _("Check-in participation"),
        "activity_signups": _("Activity sign-ups"),
        "activity_rate": _("Activity participation"),
    }


def _with_percent(row: dict) -> dict:
    """The row with its rates as percentages for display (``row["percent"]``)."""
    return {**row, "percent": {k: None if row.get(k) is None else 100 * row[k] for k in RATES}}


def _ctx(**extra) -> dict:
    return {"display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE, **extra}


def _ticks(top: float, fmt) -> list[dict]:
    c = CANVAS
    return [{"y": round(c.bottom - c.plot_h * f, 1), "label": fmt(top * f)} for f in (0, 0.5, 1)]


def _x_labels(series: list[dict], slot: float) -> list[dict]:
    step = max(len(series) // 8, 1)
    return [
        {"x": round(CANVAS.pad_left + i * slot + slot / 2, 1), "label": row["day"].strftime("%m-%d")}
        for i, row in enumerate(series)
        if i % step == 0 or i == len(series) - 1
    ]


def activity_chart(series: list[dict]) -> dict:
    """Bars for messages (left axis), a line for active members (right axis)."""
    c = CANVAS
    slot = c.plot_w / max(len(series), 1)
    top_msgs = nice_max(max((r["messages"] for r in series), default=0))
    top_active = nice_max(max((r["active_members"] for r in series), default=0))
    bars, points = [], []
    for i, row in enumerate(series):
        x = c.pad_left + i * slot
        h = c.height_of(row["messages"], top_msgs)
        bars.append(
            {
                "x": round(x + slot * 0.15, 1),
                "y": round(c.bottom - h, 1),
                "w": round(slot * 0.7, 1),
                "h": round(h, 1),
                "row": row,
            }
        )
        points.append((round(x + slot / 2, 1), round(c.y(row["active_members"], top_active), 1)))
    left = _ticks(top_msgs, lambda v: int(v) if v == int(v) else round(v, 1))
    right = _ticks(top_active, lambda v: int(v) if v == int(v) else round(v, 1))
    return {
        **c.frame(),
        "bars": bars,
        "line": polyline(points),
        "dots": [{"x": x, "y": y, "row": row} for (x, y), row in zip(points, series, strict=True)],
        "ticks": [
            {"y": lt["y"], "left": lt["label"], "right": rt["label"]} for lt, rt in zip(left, right, strict=True)
        ],
        "x_labels": _x_labels(series, slot),
    }


def rates_chart(series: list[dict]) -> dict:
    """One line per rate (leave, check-in, activity participation), in percent."""
    c = CANVAS
    slot = c.plot_w / max(len(series), 1)
    top = nice_max(100 * max((r[key] for r in series for key, _colour in RATE_LINES), default=0))
    lines = []
    for key, colour in RATE_LINES:
        points = [
            (round(c.pad_left + i * slot + slot / 2, 1), round(c.y(100 * row[key], top), 1))
            for i, row in enumerate(series)
        ]
        lines.append({"key": key, "colour": colour, "points": polyline(points)})
    return {
        **c.frame(),
        "lines": lines,
        "ticks": _ticks(top, lambda v: f"{v:g}%"),
        "x_labels": _x_labels(series, slot),
    }


@login_required
@permission_required("communities.view_grouphealthday", raise_exception=True)
def health_index(request):
    days = selectors.period_days(request.GET.get("days"))
    start, end = selectors.period_bounds(days)
    sort = request.GET.get("sort", "leave_rate")
    sort = sort if sort in selectors.SORT_KEYS else "leave_rate"
    descending = request.GET.get("dir", "desc") != "asc"
    rows = selectors.groups_compare(user=request.user, start=start, end=end, sort=sort, descending=descending)
    return render(
        request,
        "communities/health/index.html",
        _ctx(
            rows=[_with_percent(r) for r in rows],
            days=days,
            periods=selectors.PERIODS,
            start=start,
            end=end,
            sort=sort,
            descending=descending,
            columns=[(k, column_labels()[k]) for k in selectors.SORT_KEYS if k != "name"],
        ),
    )


@login_required
@permission_required("communities.view_grouphealthday", raise_exception=True)
def health_group(request, group_id: int, *, form: RollupForm | None = None, status: int = 200):
    group = _group(request, group_id)
    days = selectors.period_days(request.GET.get("days"))
    start, end = selectors.period_bounds(days)
    series = selectors.group_series(group=group, start=start, end=end)
    can_manage = access.MANAGE in access.rights_of(request.user, group)
    return render(
        request,
        "communities/health/group.html",
        _ctx(
            group=group,
            days=days,
            periods=selectors.PERIODS,
            start=start,
            end=end,
            series=[_with_percent(r) for r in series],
            labels=column_labels(),
            missing=sum(1 for r in series if r["missing"]),
            activity=activity_chart(series),
            rates=rates_chart(series),
            rate_lines=[{"key": k, "colour": c, "label": column_labels()[k]} for k, c in RATE_LINES],
            can_manage=can_manage,
            rollup_form=form or (RollupForm(initial={"day_from": start, "day_to": end}) if can_manage else None),
        ),
        status=status,
    )


@login_required
@require_POST
@permission_required("communities.view_grouphealthday", raise_exception=True)
def health_rollup(request, group_id: int):
    group = _group(request, group_id, right=access.MANAGE)
    form = RollupForm(request.POST)
    if not form.is_valid():
        return health_group(request, group.pk, form=form, status=400)
    try:
        day_from, day_to = services.health_range_check(form.cleaned_data["day_from"], form.cleaned_data["day_to"])
    except ApplicationError as exc:
        form.add_error(None, exc.message)
        return health_group(request, group.pk, form=form, status=exc.status_code)
    try:
        health_rollup_range_task.delay_on_commit(day_from.isoformat(), day_to.isoformat(), [group.pk])
    except OperationalError:
        messages.error(request, _("The job queue is not reachable; try again in a moment."))
    else:
        messages.success(
            request,
            _("Roll-up of %(a)s – %(b)s queued; the figures update when the job has run.")
            % {"a": day_from.isoformat(), "b": day_to.isoformat()},
        )
    return redirect(reverse("communities:group-health", args=[group.pk]))

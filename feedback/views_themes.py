"""Operator pages for themes: the themes with their size and weekly trend, a theme's
page (rename, confirm, dismiss, hand to the roadmap) and the product roadmap with each
item's status. ``feedback.view_theme`` sees them, ``feedback.change_theme`` acts.
Views check permissions, call one service or selector and render; a form with errors
re-renders with 200 and the errors shown, as the other operator pages do."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core.charts import Canvas, nice_max, polyline
from core.errors import ApplicationError, NotFound

from .forms_themes import RoadmapHandoffForm, RoadmapStatusForm, ThemeRenameForm
from .models import RoadmapItem, Theme
from .selectors import themes as selectors
from .services import themes as services

THEMES_SHOWN = 200
#: which themes the list shows for each ``?status=``
THEME_FILTERS: dict[str, list[str] | None] = {
    "open": [Theme.Status.SUGGESTED, Theme.Status.CONFIRMED],
    "suggested": [Theme.Status.SUGGESTED],
    "confirmed": [Theme.Status.CONFIRMED],
    "dismissed": [Theme.Status.DISMISSED],
    "all": None,
}

SPARK_CANVAS = Canvas(width=120, height=28, pad_left=2, pad_right=2, pad_top=3, pad_bottom=3)
TREND_CANVAS = Canvas(width=560, height=170, pad_left=36, pad_right=12, pad_top=12, pad_bottom=26)


def sparkline(counts: list[int]) -> dict:
    """A small line of weekly counts, oldest left, for a table cell."""
    c = SPARK_CANVAS
    top = max(max(counts, default=0), 1)
    n = len(counts)
    points = [
        (round(c.pad_left + (c.plot_w * i / (n - 1) if n > 1 else c.plot_w / 2), 1), round(c.y(v, top), 1))
        for i, v in enumerate(counts)
    ]
    return {"width": c.width, "height": c.height, "line": polyline(points), "last": points[-1] if points else None}


def trend_chart(weeks: list, counts: list[int]) -> dict:
    """Bars of tickets per week with the Monday of each week under it."""
    c = TREND_CANVAS
    top = nice_max(max(counts, default=0))
    slot = c.plot_w / max(len(counts), 1)
    bars = []
    for i, (monday, n) in enumerate(zip(weeks, counts, strict=True)):
        height = c.height_of(n, top)
        bars.append(
            {
                "x": round(c.pad_left + slot * i + slot * 0.15, 1),
                "width": round(slot * 0.7, 1),
                "y": round(c.bottom - height, 1),
                "height": round(height, 1),
                "label_x": round(c.pad_left + slot * (i + 0.5), 1),
                "monday": monday,
                "n": n,
            }
        )
    return {**c.frame(), "max": top, "bars": bars}


def _filter_labels() -> list[tuple[str, str]]:
    return [
        ("open", _("Suggested and confirmed")),
        ("suggested", _("Suggested")),
        ("confirmed", _("Confirmed")),
        ("dismissed", _("Dismissed")),
        ("all", _("All themes")),
    ]


def _theme_or_404(theme_id: int) -> Theme:
    try:
        return selectors.theme_get(theme_id=theme_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


@login_required
@permission_required("feedback.view_theme", raise_exception=True)
def theme_list(request):
    key = request.GET.get("status", "open")
    if key not in THEME_FILTERS:
        key = "open"
    themes = list(selectors.theme_list(statuses=THEME_FILTERS[key])[:THEMES_SHOWN])
    weeks = selectors.trend_weeks()
    counts = selectors.themes_weekly_counts(theme_ids=[t.pk for t in themes], weeks=len(weeks))
    rows = []
    for theme in themes:
        trend = counts.get(theme.pk, [0] * len(weeks))
        rows.append({"theme": theme, "trend": trend, "this_week": trend[-1], "spark": sparkline(trend)})
    return render(
        request,
        "feedback/themes/theme_list.html",
        {
            "rows": rows,
            "filter": key,
            "filters": _filter_labels(),
            "weeks": weeks,
            "shown_max": THEMES_SHOWN,
            "display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE,
        },
    )


def _detail(request, theme: Theme, *, rename_form=None, roadmap_form=None, status: int = 200):
    weeks = selectors.trend_weeks()
    trend = selectors.themes_weekly_counts(theme_ids=[theme.pk], weeks=len(weeks)).get(theme.pk, [0] * len(weeks))
    roadmap_item = getattr(theme, "roadmap_item", None)  # None when it is not on the roadmap
    return render(
        request,
        "feedback/themes/theme_detail.html",
        {
            "theme": theme,
            "roadmap_item": roadmap_item,
            "tickets": selectors.theme_tickets(theme=theme),
            "tickets_shown_max": selectors.THEME_TICKETS_SHOWN,
            "chart": trend_chart(weeks, trend),
            "trend_rows": list(zip(weeks, trend, strict=True)),
            "can_change": request.user.has_perm("feedback.change_theme"),
            "rename_form": rename_form or ThemeRenameForm(initial={"name": theme.name}),
            "roadmap_form": roadmap_form or RoadmapHandoffForm(initial={"title": theme.name}),
            "display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE,
        },
        status=status,
    )


@login_required
@permission_required("feedback.view_theme", raise_exception=True)
def theme_detail(request, theme_id: int):
    return _detail(request, _theme_or_404(theme_id))


@login_required
@permission_required("feedback.change_theme", raise_exception=True)
@require_POST
def theme_rename(request, theme_id: int):
    theme = _theme_or_404(theme_id)
    form = ThemeRenameForm(request.POST)
    if form.is_valid():
        try:
            renamed = services.theme_rename(theme=theme, name=form.cleaned_data["name"], actor=request.user)
        except ApplicationError as exc:
            form.add_error("name", exc.message)
        else:
            messages.success(request, _("Theme renamed to “%(name)s”.") % {"name": renamed.name})
            return redirect("feedback_themes:detail", theme_id=theme.pk)
    return _detail(request, theme, rename_form=form)


@login_required
@permission_required("feedback.change_theme", raise_exception=True)
@require_POST
def theme_confirm(request, theme_id: int):
    theme = _theme_or_404(theme_id)
    try:
        services.theme_confirm(theme=theme, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Theme confirmed."))
    return redirect("feedback_themes:detail", theme_id=theme.pk)


@login_required
@permission_required("feedback.change_theme", raise_exception=True)
@require_POST
def theme_dismiss(request, theme_id: int):
    theme = _theme_or_404(theme_id)
    try:
        services.theme_dismiss(theme=theme, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Theme dismissed: its tickets will not be suggested as a theme again."))
    return redirect("feedback_themes:detail", theme_id=theme.pk)


@login_required
@permission_required("feedback.change_theme", raise_exception=True)
@require_POST
def theme_to_roadmap(request, theme_id: int):
    theme = _theme_or_404(theme_id)
    form = RoadmapHandoffForm(request.POST)
    if form.is_valid():
        try:
            item = services.theme_to_roadmap(theme=theme, title=form.cleaned_data["title"], actor=request.user)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("“%(title)s” is on the product roadmap.") % {"title": item.title})
            return redirect("feedback_themes:detail", theme_id=theme.pk)
    return _detail(request, theme, roadmap_form=form)


def _roadmap(request, *, errors: dict[int, str] | None = None):
    status = request.GET.get("status") or ""
    if status not in RoadmapItem.Status.values:
        status = ""
    return render(
        request,
        "feedback/themes/roadmap.html",
        {
            "items": list(selectors.roadmap_list(status=status or None)),
            "status": status,
            "statuses": RoadmapItem.Status.choices,
            "errors": errors or {},
            "can_change": request.user.has_perm("feedback.change_theme"),
            "display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE,
        },
    )


@login_required
@permission_required("feedback.view_theme", raise_exception=True)
def roadmap(request):
    return _roadmap(request)


@login_required
@permission_required("feedback.change_theme", raise_exception=True)
@require_POST
def roadmap_item_status(request, item_id: int):
    try:
        item = selectors.roadmap_item_get(item_id=item_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    form = RoadmapStatusForm(request.POST)
    if form.is_valid():
        try:
            changed = services.roadmap_item_set_status(
                item=item, status=form.cleaned_data["status"], actor=request.user
            )
        except ApplicationError as exc:
            return _roadmap(request, errors={item.pk: exc.message})
        messages.success(
            request,
            _("“%(title)s” is now %(status)s.") % {"title": changed.title, "status": changed.get_status_display()},
        )
        return redirect("feedback_themes:roadmap")
    return _roadmap(request, errors={item.pk: " ".join(form.errors.get("status", []))})

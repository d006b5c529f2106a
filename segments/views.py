"""Operator pages for segments: the catalogue, the builder with its live size
preview, static uploads, a segment's page with its size history, the stage
transition matrix and the "recompute now" button. Views check permissions,
call one service or selector and render; the rules live in ``segments``'s
services, selectors and definitions, the operator-facing names in ``labels``,
the builder's field metadata in ``builder``, and the pieces other apps' pages
show in ``panels``."""

import json
from datetime import date, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from kombu.exceptions import OperationalError

from core import exports
from core.charts import Canvas, polyline
from core.errors import ApplicationError, NotFound
from core.json import json_loads_bounded
from core.timezones import operator_end_of_day

from . import selectors
from .builder import EMPTY_DEFINITION, builder_meta
from .definitions import DefinitionError
from .forms import SegmentForm, StaticUploadForm, TransitionForm, definition_error_text
from .labels import BUILTIN_DIMENSION_LABELS, label
from .models import Segment, SegmentRun, Stage
from .services import segment_save, static_segment_upload

MEMBERS_SHOWN = 100


def _require_any(request, *perms: str) -> None:
    if not any(request.user.has_perm(p) for p in perms):
        raise PermissionDenied


def _error_json(exc: ApplicationError, status: int | None = None) -> JsonResponse:
    return JsonResponse(
        {"error": {"code": exc.code, "message": exc.message, "details": exc.details}},
        status=status or exc.status_code,
        json_dumps_params={"ensure_ascii": False},
    )


def builtin_key(slug: str, dimensions: dict | None = None) -> tuple[str, str] | None:
    """``("stage", "stage:mature")`` for a built-in slug like ``stage-mature``: the
    dimension and its size-history key; ``None`` for anything else."""
    if dimensions is None:
        dimensions = selectors.builtin_dimensions(selectors.run_published())
    # Longest prefix first: "rfm-segment-x" is not "rfm-" + "segment-x".
    for prefix, (column, labels) in sorted(dimensions.items(), key=lambda kv: -len(kv[0])):
        value = slug[len(prefix) + 1 :]
        if slug.startswith(f"{prefix}-") and value in labels:
            return prefix, f"{column}:{value}"
    return None


def _catalogue_rows() -> list[dict]:
    rows = []
    dimensions = selectors.builtin_dimensions(selectors.run_published())
    for row in selectors.segment_catalogue():
        if row["kind"] == "builtin":
            prefix, value = row["slug"], ""
            found = builtin_key(row["slug"], dimensions)
            if found:
                prefix, value = found[0], row["slug"][len(found[0]) + 1 :]
            row = {**row, "dimension": str(BUILTIN_DIMENSION_LABELS.get(prefix, prefix)), "label": label(value)}
        rows.append(row)
    return rows


@login_required
@permission_required("segments.view_segment", raise_exception=True)
def segment_list(request):
    rows = _catalogue_rows()
    return render(
        request,
        "segments/segment_list.html",
        {
            "builtin": [r for r in rows if r["kind"] == "builtin"],
            "custom": [r for r in rows if r["kind"] != "builtin"],
            "run": selectors.run_published(),
            "can_add": request.user.has_perm("segments.add_segment"),
            "display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE,
        },
    )


def _save_errors_to_form(form: SegmentForm, exc: ApplicationError) -> None:
    if isinstance(exc, DefinitionError):
        form.add_error("definition", definition_error_text(exc))
        return
    field = (exc.details or {}).get("field") if isinstance(exc.details, dict) else None
    form.add_error(field if field in form.fields else None, exc.message)


def _builder(request, *, segment: Segment | None):
    # Like every form page here, a form with errors re-renders with 200 and the errors
    # shown (as Django does); only the JSON preview answers 4xx.
    editing = segment is not None
    initial = (
        {
            "name": segment.name,
            "slug": segment.slug,
            "description": segment.description,
            "definition": segment.definition,
            "is_active": segment.is_active,
        }
        if editing
        else {"definition": EMPTY_DEFINITION, "is_active": True}
    )
    form = SegmentForm(request.POST or None, initial=initial, editing=editing)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            saved = segment_save(
                name=data["name"],
                definition=data["definition"],
                actor=request.user,
                slug="" if editing else data["slug"],
                description=data["description"],
                segment=segment,
                is_active=data["is_active"],
            )
        except ApplicationError as exc:
            _save_errors_to_form(form, exc)
        else:
            messages.success(
                request, _("Segment “%(name)s” saved: %(size)s members.") % {"name": saved.name, "size": saved.size}
            )
            return redirect("segments:detail", slug=saved.slug)
    return render(
        request,
        "segments/segment_form.html",
        {
            "form": form,
            "segment": segment,
            "builder_meta": builder_meta(),
            "customer_url": reverse("users:detail", args=["__id__"]),
            "display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE,
        },
    )


@login_required
@permission_required("segments.add_segment", raise_exception=True)
def segment_create(request):
    return _builder(request, segment=None)


@login_required
@permission_required("segments.change_segment", raise_exception=True)
def segment_edit(request, slug):
    try:
        segment = selectors.segment_get(slug=slug)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    if segment.kind != Segment.Kind.DYNAMIC:
        messages.info(request, _("A static segment changes by uploading its list again."))
        return redirect(f"{reverse('segments:upload')}?{urlencode({'slug': segment.slug, 'name': segment.name})}")
    return _builder(request, segment=segment)


@login_required
@require_POST
def segment_preview(request):
    """``{"size", "sample"}`` of the posted definition against the published run, or
    ``{"error": {"code", "message", "details"}}`` with 400 when it is not valid."""
    if not (request.user.has_perm("segments.add_segment") or request.user.has_perm("segments.change_segment")):
        return _error_json(ApplicationError(_("You may not build segments."), code="permission_denied"), status=403)
    try:
        body = json_loads_bounded(request.body or b"null", clean_text=True)  # too deep or NUL: "not JSON"
    except ValueError:
        return _error_json(ApplicationError(_("The request body is not JSON."), code="invalid_json"), status=400)
    definition = body["definition"] if isinstance(body, dict) and "definition" in body else body
    try:
        result = selectors.segment_preview(definition=definition)
    except ApplicationError as exc:
        return _error_json(exc, status=400)
    return JsonResponse({"size": result["size"], "sample": result["sample"]})


@login_required
@permission_required("segments.add_segment", raise_exception=True)
def segment_upload(request):
    form = StaticUploadForm(
        request.POST or None,
        request.FILES or None,
        initial={"slug": request.GET.get("slug", ""), "name": request.GET.get("name", "")},
    )
    unknown: list[str] = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            segment = static_segment_upload(
                name=data["name"], file_bytes=data["file"].read(), actor=request.user, slug=data["slug"]
            )
        except ApplicationError as exc:
            details = exc.details if isinstance(exc.details, dict) else {}
            unknown = details.get("unknown", [])[:20]
            field = details.get("field")
            form.add_error(field if field in form.fields else None, exc.message)
        else:
            messages.success(
                request,
                _("Static segment “%(name)s” saved: %(size)s members.") % {"name": segment.name, "size": segment.size},
            )
            return redirect("segments:detail", slug=segment.slug)
    return render(
        request,
        "segments/segment_upload.html",
        {
            "form": form,
            "unknown": unknown,
            "display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE,
        },
    )


# Size-history chart canvas in SVG user units; the <svg> scales to its container.
HISTORY_CANVAS = Canvas(width=720, height=180, pad_left=48, pad_right=16, pad_top=12, pad_bottom=26)


def size_chart(history: list[dict]) -> dict | None:
    """Geometry for the size-over-time line: one point per recompute snapshot."""
    if not history:
        return None
    c = HISTORY_CANVAS
    top_value = max(max(row["size"] for row in history), 1)
    n = len(history)
    points = []
    for i, row in enumerate(history):
        x = c.pad_left + (c.plot_w * i / (n - 1) if n > 1 else c.plot_w / 2)
        points.append({"x": round(x, 1), "y": round(c.y(row["size"], top_value), 1), "row": row})
    labels = [p for i, p in enumerate(points) if i in (0, n - 1) or (n > 6 and i % max(1, n // 5) == 0)]
    return {
        **c.frame(),
        "max": top_value,
        "line": polyline((p["x"], p["y"]) for p in points),
        "points": points,
        "labels": labels,
    }


@login_required
@permission_required("segments.view_segment", raise_exception=True)
def segment_detail(request, slug):
    found = builtin_key(slug)
    segment = None
    if found is not None:
        key = found[1]
        entry = next((r for r in _catalogue_rows() if r["slug"] == slug), None)
        if entry is None:
            raise Http404(slug)
        info = {
            "name": f"{entry['dimension']}: {entry['label']}",
            "kind": "builtin",
            "size": entry["size"],
            "computed_at": entry["computed_at"],
        }
    else:
        try:
            segment = selectors.segment_get(slug=slug)
        except NotFound as exc:
            raise Http404(exc.message) from exc
        key = f"custom:{slug}"
        info = {"name": segment.name, "kind": segment.kind, "size": segment.size, "computed_at": segment.computed_at}
    history = selectors.size_history(key=key)
    members = list(
        selectors.segment_members(slug=slug)
        .order_by("id")
        .only("id", "external_id", "name", "nickname")[:MEMBERS_SHOWN]
    )
    return render(
        request,
        "segments/segment_detail.html",
        {
            "slug": slug,
            "info": info,
            "segment": segment,
            "definition_pretty": (
                json.dumps(segment.definition, ensure_ascii=False, indent=2)
                if segment is not None and segment.kind == Segment.Kind.DYNAMIC
                else ""
            ),
            "history_key": key,
            "history": history,
            "chart": size_chart(history),
            "members": members,
            "members_shown": MEMBERS_SHOWN,
            "can_change": segment is not None and request.user.has_perm("segments.change_segment"),
            "display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE,
        },
    )


@login_required
@permission_required("segments.view_segment", raise_exception=True)
def transitions(request):
    """How many customers moved from each stage (at the end of ``start``) to each
    stage (at the end of ``end``), days in the team's timezone."""
    today = timezone.now().astimezone(ZoneInfo(settings.OPS_DEFAULT_CUSTOMER_TIMEZONE)).date()
    given = "start" in request.GET or "end" in request.GET
    form = TransitionForm(
        request.GET if given else {"start": (today - timedelta(days=7)).isoformat(), "end": today.isoformat()}
    )
    stages = list(Stage.values)
    table = None
    if form.is_valid():
        start, end = form.cleaned_data["start"], form.cleaned_data["end"]
        matrix = selectors.transition_matrix(start=operator_end_of_day(start), end=operator_end_of_day(end))
        if request.GET.get("format") == "csv":
            return _matrix_csv(matrix, stages, start, end)
        rows = []
        for origin in ["none", *stages]:
            cells = [matrix.get(origin, {}).get(s, 0) for s in stages]
            rows.append(
                {
                    "stage": origin,
                    "label": _("(no stage yet)") if origin == "none" else label(origin),
                    "cells": [{"n": n, "moved": s != origin} for n, s in zip(cells, stages, strict=True)],
                    "total": sum(cells),
                }
            )
        totals = [sum(r["cells"][i]["n"] for r in rows) for i in range(len(stages))]
        table = {
            "rows": rows,
            "columns": [{"stage": s, "label": label(s)} for s in stages],
            "totals": totals,
            "total": sum(totals),
        }
    return render(
        request,
        "segments/transitions.html",
        {
            "form": form,
            "table": table,
            "display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE,
        },
    )


def _matrix_csv(matrix: dict, stages: list[str], start: date, end: date) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="stage-transitions-{start}-{end}.csv"'
    response.write("\ufeff")  # so spreadsheet programs read the file as UTF-8
    writer = exports.csv_writer(response)
    writer.writerow(["from \\ to", *stages])
    for origin in ["none", *stages]:
        writer.writerow([origin, *(matrix.get(origin, {}).get(s, 0) for s in stages)])
    return response


@login_required
@require_POST
def recompute(request):
    """Queues a full recompute. One runs at a time: the service refuses a second one,
    and this page says so instead of queueing a task that would do nothing."""
    if not (request.user.is_superuser or request.user.has_perm("segments.change_ruleset")):
        raise PermissionDenied
    from .services import STALE_AFTER
    from .tasks import segments_recompute_task

    progress = selectors.recompute_progress()
    if (
        progress
        and progress["status"] == SegmentRun.Status.RUNNING
        and progress["heartbeat_at"] > timezone.now() - STALE_AFTER
    ):
        messages.warning(
            request,
            _("A recompute is already running (%(done)s of %(total)s chunks done).")
            % {"done": progress["chunks_done"], "total": progress["chunks_total"]},
        )
        return redirect("dashboards:home")
    try:
        segments_recompute_task.delay()
    except ApplicationError as exc:  # a Conflict when the task runs eagerly
        messages.warning(request, exc.message)
    except OperationalError:
        messages.error(request, _("The task queue cannot be reached; the recompute was not started."))
    else:
        messages.success(request, _("Segment recompute queued. Its progress shows on the dashboard."))
        # The dashboard's card watches for the queued run and follows it (static/js/dashboard.js).
        return redirect(f"{reverse('dashboards:home')}?watch=recompute")
    return redirect("dashboards:home")

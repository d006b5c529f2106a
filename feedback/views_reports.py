"""Operator pages for the queue's reports and the NPS surveys. The reports page shows,
for a period of operator days, the share of tickets that met each SLA target (by
team, priority, category and week), response and resolution times, CSAT and NPS, and
the open backlog now; every table downloads as CSV or Excel (formula-safe, through
``core.exports``). Figures come from ``feedback.selectors.reports`` and
``.satisfaction``; writes from ``feedback.services.satisfaction``."""

from dataclasses import dataclass
from datetime import date, timedelta

import tablib
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext, pgettext_lazy
from django.views.decorators.http import require_POST
from kombu.exceptions import OperationalError

from core import exports
from core.errors import ApplicationError, NotFound
from core.timezones import operator_timezone
from segments.selectors import segment_catalogue

from .selectors import reports, satisfaction
from .services import satisfaction as services
from .tasks import nps_survey_send_task

DEFAULT_DAYS = 28
MAX_DAYS = 366


class PeriodForm(forms.Form):
    start = forms.DateField(label=gettext_lazy("From"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=gettext_lazy("To"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if start > end:
                raise forms.ValidationError(gettext_lazy("The start date is after the end date."), code="order")
            if (end - start).days >= MAX_DAYS:
                raise forms.ValidationError(
                    gettext_lazy("A report covers at most %(days)s days.") % {"days": MAX_DAYS}, code="too_long"
                )
        return data


class SurveyForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=services.MAX_NAME)
    segment_slug = forms.CharField(label=gettext_lazy("Segment"), max_length=80)
    question = forms.CharField(
        label=pgettext_lazy("feedback report", "Question"),
        max_length=services.MAX_QUESTION,
        required=False,
        help_text=gettext_lazy("Leave empty for the standard question (0–10, would you recommend us?)."),
    )


# --- tables ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    header: str
    kind: str = "int"  # text, int, share (0–1), seconds, score


def _display(value, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "share":
        return f"{value * 100:.1f}%"
    if kind == "seconds":
        return reports.duration_label(value)
    if kind == "score":
        return f"{value:.2f}" if isinstance(value, float) else str(value)
    return str(value)


def _export_value(value, kind: str):
    if value is None:
        return ""
    if kind == "share":
        return round(value * 100, 1)
    if kind == "seconds":
        return round(value / 3600, 2)
    if kind == "score" and isinstance(value, float):
        return round(value, 2)
    return value


def _sla_columns(first: str) -> list[Column]:
    cols = [Column(first, "text"), Column(pgettext("feedback report", "Tickets"))]
    for label in (pgettext("feedback report", "First response"), pgettext("feedback report", "Resolution")):
        cols += [
            Column(_("%(target)s: met") % {"target": label}),
            Column(_("%(target)s: breached") % {"target": label}),
            Column(_("%(target)s: pending") % {"target": label}),
            Column(_("%(target)s: share met") % {"target": label}, "share"),
        ]
    return cols


def _sla_rows(rows: list[dict]) -> list[list]:
    out = []
    for row in [*rows, reports.sla_share_total(rows)] if rows else []:
        cells = [row["label"], row["tickets"]]
        for kind in reports.KINDS:
            t = row[kind]
            cells += [t["met"], t["breached"], t["pending"], t["share"]]
        out.append(cells)
    return out


def _times_table(data: dict) -> tuple[list[Column], list[list]]:
    cols = [Column(pgettext("feedback report", "Team"), "text")]
    for label in (pgettext("feedback report", "First response"), pgettext("feedback report", "Resolution")):
        cols += [
            Column(_("%(measure)s: tickets") % {"measure": label}),
            Column(_("%(measure)s: median (hours)") % {"measure": label}, "seconds"),
            Column(_("%(measure)s: p90 (hours)") % {"measure": label}, "seconds"),
        ]
    rows = []
    everyone = (pgettext("feedback report", "All"), data["overall"])
    for label, measures in [everyone, *((t["label"], t) for t in data["teams"])]:
        cells = [label]
        for kind in reports.KINDS:
            m = measures[kind]
            cells += [m["count"], m["median"], m["p90"]]
        rows.append(cells)
    return cols, rows


def _backlog_table(data: list[dict]) -> tuple[list[Column], list[list]]:
    cols = [
        Column(pgettext("feedback report", "Team"), "text"),
        Column(pgettext("feedback report", "Priority"), "text"),
    ]
    cols += [Column(label) for _key, label, *_rest in reports.AGE_BUCKETS] + [Column(_("Total"))]
    rows = [
        [r["team_label"], r["priority_label"], *(r["buckets"][k] for k, *_rest in reports.AGE_BUCKETS), r["total"]]
        for r in data
    ]
    return cols, rows


def _csat_table(data: list[dict]) -> tuple[list[Column], list[list]]:
    cols = [
        Column(pgettext("feedback report", "Week"), "text"),
        Column(pgettext("feedback report", "Team"), "text"),
        Column(pgettext("feedback report", "Answers")),
        Column(_("Average (1–5)"), "score"),
        Column(_("Share satisfied (4–5)"), "share"),
    ]
    rows = [[r["week_label"], r["team_label"], r["count"], r["average"], r["satisfied_share"]] for r in data]
    return cols, rows


def _nps_table(data: list[dict]) -> tuple[list[Column], list[list]]:
    cols = [
        Column(pgettext("feedback report", "Week"), "text"),
        Column(pgettext("feedback report", "Answers")),
        Column(_("Promoters (9–10)")),
        Column(_("Passives (7–8)")),
        Column(_("Detractors (0–6)")),
        Column(pgettext("feedback report", "NPS"), "score"),
    ]
    rows = [[r["week_label"], r["count"], r["promoters"], r["passives"], r["detractors"], r["nps"]] for r in data]
    return cols, rows


SLA_GROUPS = {
    "sla_team": ("team", pgettext_lazy("feedback report", "Team")),
    "sla_priority": ("priority", pgettext_lazy("feedback report", "Priority")),
    "sla_category": ("category", pgettext_lazy("feedback report", "Category")),
    "sla_week": ("week", pgettext_lazy("feedback report", "Week (ISO)")),
}
TABLE_TITLES = {
    "sla_team": gettext_lazy("SLA targets met, by team"),
    "sla_priority": gettext_lazy("SLA targets met, by priority"),
    "sla_category": gettext_lazy("SLA targets met, by category"),
    "sla_week": gettext_lazy("SLA targets met, by week of creation"),
    "times": gettext_lazy("First response and resolution times"),
    "backlog": gettext_lazy("Open backlog by age (now)"),
    "csat": gettext_lazy("CSAT by team and week"),
    "nps": gettext_lazy("NPS by week"),
}


def _table(name: str, start: date, end: date, now) -> tuple[list[Column], list[list]]:
    """One table's columns and raw rows: one selector, one query."""
    if name in SLA_GROUPS:
        by, first = SLA_GROUPS[name]
        return _sla_columns(str(first)), _sla_rows(reports.sla_share(start=start, end=end, by=by))
    if name == "times":
        return _times_table(reports.response_times(start=start, end=end))
    if name == "backlog":
        return _backlog_table(reports.backlog_by_age(now=now))
    if name == "csat":
        return _csat_table(satisfaction.csat_by_team_week(start=start, end=end))
    return _nps_table(satisfaction.nps_by_week(start=start, end=end))


def _export(name: str, cols: list[Column], rows: list[list], fmt: str, start: date, end: date) -> HttpResponse:
    dataset = tablib.Dataset(headers=[c.header for c in cols], title=name)
    for row in rows:
        dataset.append([_export_value(v, c.kind) for v, c in zip(row, cols, strict=True)])
    filename = f"feedback-{name.replace('_', '-')}-{start}-{end}"
    if fmt == "xlsx":
        response = HttpResponse(
            exports.SafeXLSX().export_data(dataset),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        response["Content-Disposition"] = f'attachment; filename="{filename}.xlsx"'
        return response
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    response.write("\ufeff")  # so spreadsheet programs read the file as UTF-8
    response.write(exports.SafeCSV().export_data(dataset))
    return response


def _default_period() -> tuple[date, date]:
    today = timezone.now().astimezone(operator_timezone()).date()
    return today - timedelta(days=DEFAULT_DAYS - 1), today


@login_required
@permission_required("feedback.view_ticket", raise_exception=True)
def reports_page(request):
    start, end = _default_period()
    bound = "start" in request.GET or "end" in request.GET
    form = PeriodForm(request.GET if bound else None, initial={"start": start, "end": end})
    if bound and not form.is_valid():
        return render(request, "feedback/reports/index.html", {"form": form, "tables": []}, status=400)
    if bound:
        start, end = form.cleaned_data["start"], form.cleaned_data["end"]
    now = timezone.now()
    export = request.GET.get("export")
    if export:
        name = request.GET.get("table", "")
        if export not in ("csv", "xlsx") or name not in TABLE_TITLES:
            raise Http404
        cols, rows = _table(name, start, end, now)
        return _export(name, cols, rows, export, start, end)
    tables = []
    for name, title in TABLE_TITLES.items():
        cols, rows = _table(name, start, end, now)
        tables.append(
            {
                "name": name,
                "title": title,
                "columns": cols,
                "rows": [[(_display(v, c.kind), c.kind) for v, c in zip(row, cols, strict=True)] for row in rows],
            }
        )
    return render(
        request,
        "feedback/reports/index.html",
        {
            "form": form,
            "start": start,
            "end": end,
            "tables": tables,
            "query": f"start={start.isoformat()}&end={end.isoformat()}",
            "display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE,
        },
    )


# --- NPS surveys ------------------------------------------------------------------------


def _survey_or_404(survey_id: int):
    try:
        return satisfaction.nps_survey_get(survey_id=survey_id)
    except NotFound:
        raise Http404 from None


@login_required
@permission_required("feedback.view_npssurvey", raise_exception=True)
def nps_list(request):
    """The surveys with their results, and (with ``feedback.add_npssurvey``) a form to create one."""
    may_create = request.user.has_perm("feedback.add_npssurvey")
    form = SurveyForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if not may_create:
            raise PermissionDenied
        if form.is_valid():
            try:
                survey = services.nps_survey_create(**form.cleaned_data, actor=request.user)
            except ApplicationError as exc:
                field = next((k for k in (exc.details or {}) if k in form.fields), None)
                form.add_error(field, exc.message)
            else:
                messages.success(request, _("Survey created. Check it, then send it."))
                return redirect("feedback_reports:nps_detail", survey.pk)
        status = 400
    return render(
        request,
        "feedback/reports/nps_list.html",
        {
            "surveys": satisfaction.nps_survey_list(),
            "form": form,
            "may_create": may_create,
            "segments": segment_catalogue() if may_create else [],
            "display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE,
        },
        status=status,
    )


@login_required
@permission_required("feedback.view_npssurvey", raise_exception=True)
def nps_detail(request, survey_id: int):
    survey = _survey_or_404(survey_id)
    results = satisfaction.nps_survey_results(survey=survey)
    rate = results["response_rate"]
    return render(
        request,
        "feedback/reports/nps_detail.html",
        {
            "survey": survey,
            "results": results,
            "response_rate_percent": None if rate is None else rate * 100,
            "comments": satisfaction.nps_recent_comments(survey=survey),
            "may_send": request.user.has_perm("feedback.add_npssurvey") and survey.sent_at is None,
            "display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE,
        },
    )


@login_required
@require_POST
@permission_required("feedback.add_npssurvey", raise_exception=True)
def nps_send(request, survey_id: int):
    """Queues the send (the task refuses a second one, so a double click sends once)."""
    survey = _survey_or_404(survey_id)
    if survey.sent_at is not None:
        messages.warning(request, _("This survey has already been sent."))
        return redirect("feedback_reports:nps_detail", survey.pk)
    try:
        nps_survey_send_task.delay_on_commit(survey.pk)
    except OperationalError:
        messages.error(request, _("The task queue cannot be reached; the survey was not sent."))
    else:
        messages.success(request, _("The survey is being sent. Sent counts appear here once it has gone out."))
    return redirect("feedback_reports:nps_detail", survey.pk)

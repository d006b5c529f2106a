"""Operator pages of campaigns: the list (filtered by status, with what each sent and
what the policy held back), a new campaign, a campaign (its settings and variants, the
dry-run preview, results per variant with the A/B verdict, deliveries by status and
reason) with Launch / Pause / Cancel, and changing a draft or paused one.

Permissions (``core.roles``): seeing takes ``campaigns.view_campaign`` (viewers,
operators, admins); creating ``add_campaign``; changing, launching, pausing and
cancelling ``change_campaign`` — without it, 403; community managers hold none. An
unknown campaign is 404. Views check the shape of the input, call one service or
selector and render; a service's refusal is shown with its reason (a form comes back
with status 400) and, each service writing in one transaction, nothing is written."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from core.errors import ApplicationError, NotFound
from core.timezones import operator_timezone

from . import selectors
from .forms import CampaignFilterForm, CampaignForm, segment_names, template_choices, variant_formset
from .models import CampaignStatus, ScheduleKind, Trigger
from .services import campaigns as services
from .services.preview import campaign_preview
from .templatetags.campaigns_display import outcome_label

VIEW_PERM = "campaigns.view_campaign"
ADD_PERM = "campaigns.add_campaign"
CHANGE_PERM = "campaigns.change_campaign"
PAGE_SIZE = 50
# Before it goes (or goes on), a campaign's page shows what the policy would do now.
PREVIEWED = [CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.PAUSED]
EDITABLE = [CampaignStatus.DRAFT, CampaignStatus.PAUSED]

AB_VERDICTS = {
    "single_variant": gettext_lazy("One variant: nothing to compare."),
    "not_enough_data": gettext_lazy("Not enough data yet: fewer than %(n)s sent to a variant."),
    "no_difference": gettext_lazy("No difference in conversion between the variants."),
}


def _ctx(**extra) -> dict:
    return {"display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE, **extra}


def _campaign(campaign_id):
    try:
        return services.campaign_get(campaign_id=campaign_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def schedule_text(campaign, names: dict[str, str]) -> str:
    if campaign.schedule == ScheduleKind.ONCE:
        if campaign.start_at is None:
            return _("one-off, when launched")
        local = timezone.localtime(campaign.start_at, operator_timezone())
        return _("one-off at %(when)s") % {"when": local.strftime("%Y-%m-%d %H:%M")}
    if campaign.schedule == ScheduleKind.RECURRING:
        return _("recurring: %(cron)s (%(tz)s)") % {"cron": campaign.cron, "tz": campaign.schedule_timezone}
    value = campaign.trigger_value
    if campaign.trigger == Trigger.SIGNUP_DAY:
        return _("triggered: day %(n)s after signup") % {"n": value}
    if campaign.trigger == Trigger.BIRTHDAY:
        return _("triggered: on their birthday")
    if campaign.trigger == Trigger.SEGMENT_ENTER:
        return _("triggered: on entering %(segment)s") % {"segment": names.get(value, value)}
    if campaign.trigger == Trigger.POINTS_EXPIRING:
        return _("triggered: %(n)s days before their points expire") % {"n": value}
    return _("triggered")


# --- list ----------------------------------------------------------------------------


@login_required
@permission_required(VIEW_PERM, raise_exception=True)
def campaign_list(request):
    form = CampaignFilterForm(request.GET or None)
    status, http_status = "", 200
    if form.is_bound:
        if form.is_valid():
            status = form.cleaned_data["status"]
        else:
            http_status = 400
            messages.error(request, _("Unknown status; showing every campaign."))
    page = Paginator(selectors.campaign_list(status=status), PAGE_SIZE).get_page(request.GET.get("page"))
    names = segment_names()
    counts = selectors.campaigns_sent_held(campaign_ids=[c.pk for c in page.object_list])
    rows = [
        {
            "campaign": campaign,
            "segments": [names.get(slug, slug) for slug in campaign.segments],
            "excluded": [names.get(slug, slug) for slug in campaign.excluded_segments],
            "schedule": schedule_text(campaign, names),
            "variants": len(campaign.variants.all()),
            **counts[campaign.pk],
        }
        for campaign in page.object_list
    ]
    return render(
        request,
        "campaigns/list.html",
        _ctx(form=form, rows=rows, page_obj=page, status=status, can_create=request.user.has_perm(ADD_PERM)),
        status=http_status,
    )


# --- one campaign --------------------------------------------------------------------


def _percent(rate) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _results(campaign, *, variant_count: int) -> dict:
    results = selectors.campaign_results(campaign=campaign)
    for row in results["variants"]:
        for key in ("delivery_rate", "open_rate", "click_rate", "conversion_rate"):
            row[f"{key}_shown"] = _percent(row[key])
    ab = results["ab_test"]
    if ab["status"] == "tested":
        if ab["significant"]:
            verdict = _("Variant %(leader)s converts better; the difference is significant (p = %(p)s).") % {
                "leader": ab["leader"],
                "p": f"{ab['p_value']:.4f}",
            }
        else:
            verdict = _("No significant difference yet (p = %(p)s).") % {"p": f"{ab['p_value']:.4f}"}
    elif ab["status"] == "single_variant" and variant_count > 1:
        # An A/B campaign with results for one arm or none yet.
        verdict = _("Not enough data yet.")
    else:
        verdict = str(AB_VERDICTS.get(ab["status"], ab["status"])) % {"n": ab.get("min_sample", "")}
    results["verdict"] = verdict
    results["roi_shown"] = _percent(results["roi"])
    return results


def _sample_error(code: str) -> str:
    if code == "template_not_approved":
        return _("The template has no approved version yet.")
    if code.startswith("missing_variable:"):
        return _("No value for %(name)s: the sample customer or the variant's fields lack it.") % {
            "name": code.split(":", 1)[1]
        }
    return code


def _preview(campaign) -> dict | None:
    if campaign.status not in PREVIEWED:
        return None
    try:
        preview = campaign_preview(campaign=campaign)
    except ApplicationError as exc:
        return {"error": exc.message}
    preview["outcomes_shown"] = [
        {"key": key, "label": outcome_label(key), "n": n} for key, n in preview["outcomes"].items()
    ]
    for sample in preview["samples"]:
        if sample.get("error"):
            sample["error_shown"] = _sample_error(sample["error"])
    return preview


@login_required
@permission_required(VIEW_PERM, raise_exception=True)
def campaign_detail(request, campaign_id: int):
    campaign = _campaign(campaign_id)
    names = segment_names()
    counts = selectors.campaign_status_counts(campaign=campaign)
    can_change = request.user.has_perm(CHANGE_PERM)
    status = campaign.status
    variants = list(campaign.variants.select_related("template", "template_version").order_by("code"))
    return render(
        request,
        "campaigns/detail.html",
        _ctx(
            campaign=campaign,
            segments=[names.get(slug, slug) for slug in campaign.segments],
            excluded=[names.get(slug, slug) for slug in campaign.excluded_segments],
            schedule=schedule_text(campaign, names),
            variants=variants,
            preview=_preview(campaign),
            results=_results(campaign, variant_count=len(variants)),
            by_status=[
                {"key": key, "label": outcome_label(key), "n": n} for key, n in sorted(counts["by_status"].items())
            ],
            by_reason=[
                {"key": key, "label": outcome_label(key), "n": n} for key, n in sorted(counts["by_reason"].items())
            ],
            can_launch=can_change and status in (CampaignStatus.DRAFT, CampaignStatus.PAUSED, CampaignStatus.SCHEDULED),
            can_pause=can_change and status in (CampaignStatus.SCHEDULED, CampaignStatus.RUNNING),
            can_cancel=can_change and status not in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED),
            can_edit=can_change and status in EDITABLE,
        ),
    )


def _action(request, campaign_id, service, done: str):
    campaign = _campaign(campaign_id)
    try:
        campaign = service(campaign=campaign, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done % {"name": campaign.name, "status": campaign.get_status_display()})
    return redirect("campaigns:detail", campaign_id=campaign.pk)


@login_required
@permission_required(CHANGE_PERM, raise_exception=True)
@require_POST
def campaign_launch(request, campaign_id: int):
    return _action(request, campaign_id, services.campaign_launch, _("%(name)s launched: it is %(status)s."))


@login_required
@permission_required(CHANGE_PERM, raise_exception=True)
@require_POST
def campaign_pause(request, campaign_id: int):
    return _action(request, campaign_id, services.campaign_pause, _("%(name)s paused."))


@login_required
@permission_required(CHANGE_PERM, raise_exception=True)
@require_POST
def campaign_cancel(request, campaign_id: int):
    return _action(request, campaign_id, services.campaign_cancel, _("%(name)s cancelled."))


# --- new and edit --------------------------------------------------------------------


def _form_page(request, *, form, formset=None, campaign=None, status: int = 200):
    return render(
        request,
        "campaigns/form.html",
        _ctx(form=form, formset=formset, campaign=campaign, variants_error=getattr(formset, "service_error", "")),
        status=status,
    )


@login_required
@permission_required(ADD_PERM, raise_exception=True)
def campaign_new(request):
    names = segment_names()
    templates = template_choices()
    if request.method != "POST":
        return _form_page(request, form=CampaignForm(segments=names), formset=variant_formset(templates=templates))
    form = CampaignForm(request.POST, segments=names)
    formset = variant_formset(request.POST, templates=templates)
    if not (form.is_valid() and formset.is_valid()):
        return _form_page(request, form=form, formset=formset, status=400)
    try:
        campaign = services.campaign_create(data=form.data_for_service(), variants=formset.specs(), actor=request.user)
    except ApplicationError as exc:
        if (exc.details or {}).get("field") == "variants" or exc.code in ("unknown_template", "invalid_split"):
            formset.service_error = exc.message
        else:
            form.add_service_error(exc)
        return _form_page(request, form=form, formset=formset, status=400)
    messages.success(
        request, _("Campaign %(name)s saved as a draft; launch it when it is ready.") % {"name": campaign.name}
    )
    return redirect("campaigns:detail", campaign_id=campaign.pk)


@login_required
@permission_required(CHANGE_PERM, raise_exception=True)
def campaign_edit(request, campaign_id: int):
    campaign = _campaign(campaign_id)
    if campaign.status not in EDITABLE:
        messages.error(request, _("Pause the campaign before changing it."))
        return redirect("campaigns:detail", campaign_id=campaign.pk)
    names = segment_names()
    initial = CampaignForm.initial_of(campaign)
    if request.method != "POST":
        return _form_page(request, form=CampaignForm(initial=initial, segments=names), campaign=campaign)
    form = CampaignForm(request.POST, initial=initial, segments=names)
    if not form.is_valid():
        return _form_page(request, form=form, campaign=campaign, status=400)
    try:
        campaign = services.campaign_update(campaign=campaign, changes=form.data_for_service(), actor=request.user)
    except ApplicationError as exc:
        form.add_service_error(exc)
        return _form_page(request, form=form, campaign=campaign, status=400)
    messages.success(request, _("Campaign %(name)s saved.") % {"name": campaign.name})
    return redirect("campaigns:detail", campaign_id=campaign.pk)

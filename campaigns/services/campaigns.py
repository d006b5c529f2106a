"""Campaigns' one write path: create, change, launch, pause, cancel — each validated,
audited (from → to) and, where it starts sending, queued after the commit.

A campaign is written as a draft and checked in full when it is launched: its
audience names segments that exist, its variants' shares add up to 100, every
variant's template has an approved version (pinned at launch, so a later edit of the
template does not change a running campaign), a one-off's time is not in the past, a
recurring campaign's schedule parses, a triggered one names its trigger.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celery.schedules import crontab
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import (
    Campaign,
    CampaignStatus,
    Category,
    ContentClass,
    OnHold,
    ScheduleKind,
    Trigger,
    Variant,
)
from communities import selectors as community_selectors
from core.errors import ApplicationError, Conflict, NotFound
from core.services import audit_record
from segments import selectors as segment_selectors

# A one-off "now" may be a moment old by the time it is launched.
PAST_GRACE = timedelta(minutes=2)
FIELDS = [
    "name",
    "channel",
    "category",
    "content_class",
    "segments",
    "excluded_segments",
    "schedule",
    "start_at",
    "cron",
    "schedule_timezone",
    "trigger",
    "trigger_value",
    "on_hold",
    "max_delay_hours",
    "goal_days",
    "cost",
]


@dataclass(frozen=True)
class VariantSpec:
    code: str
    share: int
    template: str  # the SOP template's code
    subject: str = ""
    field_values: dict | None = None


def _invalid(code: str, message: str, **details) -> ApplicationError:
    return ApplicationError(message, code=code, details=details, status=422)


def _check_segments(slugs, *, field: str) -> list[str]:
    if not isinstance(slugs, list) or not all(isinstance(s, str) and s for s in slugs):
        raise _invalid("invalid_segments", _("Segments are a list of segment slugs."), field=field)
    known = {row["slug"] for row in segment_selectors.segment_catalogue()}
    unknown = sorted(set(slugs) - known)
    if unknown:
        raise _invalid(
            "unknown_segment",
            _("Unknown segment(s): %(slugs)s.") % {"slugs": ", ".join(unknown)},
            field=field,
            unknown=unknown,
        )
    return sorted(set(slugs))


def cron_parse(expression: str, tz_name: str) -> crontab:
    """A five-field schedule (minute hour day-of-month month day-of-week) in ``tz_name``."""
    parts = (expression or "").split()
    if len(parts) != 5:
        raise _invalid(
            "invalid_schedule",
            _("A recurring schedule has five fields: minute hour day-of-month month day-of-week, e.g. 0 10 * * 1."),
            field="cron",
        )
    minute, hour, day_of_month, month, day_of_week = parts
    try:
        zone = ZoneInfo(tz_name)
        schedule = crontab(
            minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month, day_of_week=day_of_week
        )
        schedule.nowfun = lambda: timezone.now().astimezone(zone)
        schedule.tz = zone
    except (ValueError, ZoneInfoNotFoundError) as exc:
        raise _invalid(
            "invalid_schedule", _("The recurring schedule does not parse: %(problem)s") % {"problem": exc}, field="cron"
        ) from None
    return schedule


def _check_fields(data: dict) -> dict:
    if not str(data.get("name") or "").strip():
        raise _invalid("invalid_name", _("A campaign needs a name."), field="name")
    if data.get("channel") not in settings.OPS_CHANNELS:
        raise _invalid("unknown_channel", _("Unknown channel."), field="channel")
    for field, choices in (
        ("category", Category.values),
        ("content_class", ContentClass.values),
        ("schedule", ScheduleKind.values),
        ("trigger", Trigger.values),
        ("on_hold", OnHold.values),
    ):
        if data.get(field, "") not in choices:
            raise _invalid(
                "invalid_choice",
                _("“%(value)s” is not a valid %(field)s.") % {"value": data.get(field), "field": field},
                field=field,
            )
    data["segments"] = _check_segments(data.get("segments"), field="segments")
    data["excluded_segments"] = _check_segments(data.get("excluded_segments") or [], field="excluded_segments")
    try:
        ZoneInfo(data.get("schedule_timezone") or "")
    except (ZoneInfoNotFoundError, ValueError):
        raise _invalid("invalid_timezone", _("Unknown timezone."), field="schedule_timezone") from None
    for field, low, high in (("max_delay_hours", 0, 24 * 14), ("goal_days", 1, 90)):
        value = data.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise _invalid(
                "out_of_range",
                _("%(field)s must be a whole number from %(low)s to %(high)s.")
                % {"field": field, "low": low, "high": high},
                field=field,
            )
    data["cost"] = _check_cost(data.get("cost"))
    if data["schedule"] == ScheduleKind.RECURRING:
        cron_parse(data.get("cron", ""), data["schedule_timezone"])
    if data["schedule"] == ScheduleKind.TRIGGERED:
        _check_trigger(data.get("trigger", ""), data.get("trigger_value", ""))
    return data


def _check_cost(cost):
    if cost is None:
        return None
    try:
        cost = Decimal(str(cost))
    except ArithmeticError:
        raise _invalid("invalid_cost", _("The cost is a decimal amount."), field="cost") from None
    if not cost.is_finite() or cost < 0 or cost >= Decimal("1e10"):
        raise _invalid("invalid_cost", _("The cost is a decimal amount."), field="cost")
    return cost


def _check_trigger(trigger: str, value: str) -> None:
    if not trigger:
        raise _invalid("invalid_trigger", _("A triggered campaign names its trigger."), field="trigger")
    if trigger in (Trigger.SIGNUP_DAY, Trigger.POINTS_EXPIRING) and (
        not str(value).isdigit() or not 0 <= int(value) <= 365
    ):
        raise _invalid(
            "invalid_trigger", _("This trigger needs a number of days from 0 to 365."), field="trigger_value"
        )
    if trigger == Trigger.SEGMENT_ENTER:
        _check_segments([value] if value else [], field="trigger_value")
        if not value:
            raise _invalid("invalid_trigger", _("Name the segment whose new members get it."), field="trigger_value")


def _check_variants(specs: list[VariantSpec]) -> None:
    if not specs:
        raise _invalid("no_variants", _("A campaign needs at least one variant with a template."), field="variants")
    codes = [v.code for v in specs]
    if len(set(codes)) != len(codes) or not all(c and len(c) <= 8 for c in codes):
        raise _invalid("invalid_variants", _("Variants have distinct short codes (A, B…)."), field="variants")
    if any(not isinstance(v.share, int) or v.share < 1 or v.share > 100 for v in specs):
        raise _invalid("invalid_split", _("Each variant's share is from 1 to 100 (%)."), field="variants")
    total = sum(v.share for v in specs)
    if total != 100:
        raise _invalid(
            "invalid_split",
            _("The variants' shares add up to %(total)s%%, not 100%%.") % {"total": total},
            field="variants",
        )
    for spec in specs:
        if community_selectors.template_by_code(code=spec.template) is None:
            raise _invalid(
                "unknown_template",
                _("There is no template with the code “%(code)s”.") % {"code": spec.template},
                field="variants",
                template=spec.template,
            )


def _snapshot(campaign: Campaign) -> dict:
    return {field: getattr(campaign, field) for field in FIELDS} | {"status": campaign.status}


def campaign_create(*, data: dict, variants: list[VariantSpec], actor=None) -> Campaign:
    """A draft campaign (checked again in full at launch)."""
    data = _check_fields(
        {
            "category": Category.MARKETING,
            "content_class": "",
            "schedule": ScheduleKind.ONCE,
            "trigger": "",
            "trigger_value": "",
            "cron": "",
            "schedule_timezone": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE,
            "on_hold": OnHold.DEFER,
            "max_delay_hours": 24,
            "goal_days": 7,
            "cost": None,
            "excluded_segments": [],
            "start_at": None,
        }
        | data
    )
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise _invalid("unknown_fields", _("Unknown field(s): %(f)s.") % {"f": ", ".join(unknown)}, fields=unknown)
    _check_variants(variants)
    with transaction.atomic():
        campaign = Campaign.objects.create(
            **{k: data[k] for k in FIELDS}, created_by=actor if _is_user(actor) else None
        )
        for spec in variants:
            Variant.objects.create(
                campaign=campaign,
                code=spec.code,
                share=spec.share,
                template=community_selectors.template_by_code(code=spec.template),
                subject=spec.subject,
                field_values=spec.field_values or {},
            )
        audit_record(actor=actor, action="campaign.create", obj=campaign, after=_audit_values(campaign))
    return campaign


def _is_user(actor) -> bool:
    return actor is not None and getattr(actor, "pk", None) is not None


def _audit_values(campaign: Campaign) -> dict:
    return {k: (str(v) if isinstance(v, (datetime, Decimal)) else v) for k, v in _snapshot(campaign).items()}


def _locked(campaign: Campaign) -> Campaign:
    return Campaign.objects.select_for_update().get(pk=campaign.pk)


def campaign_update(*, campaign: Campaign, changes: dict, actor=None) -> Campaign:
    """Changes a draft or paused campaign's settings (a running one is paused first)."""
    with transaction.atomic():
        campaign = _locked(campaign)
        if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.PAUSED):
            raise Conflict(_("Pause the campaign before changing it."), code="campaign_not_editable")
        before = _audit_values(campaign)
        data = _check_fields({**{f: getattr(campaign, f) for f in FIELDS}, **changes})
        for field in FIELDS:
            setattr(campaign, field, data[field])
        campaign.save()
        audit_record(actor=actor, action="campaign.update", obj=campaign, before=before, after=_audit_values(campaign))
    return campaign


def _pin_templates(campaign: Campaign) -> None:
    for variant in campaign.variants.select_related("template"):
        template = variant.template
        if not template.is_active or template.approved_version_id is None:
            raise _invalid(
                "template_not_approved",
                _("The template “%(name)s” of variant %(code)s has no approved version.")
                % {"name": template.name, "code": variant.code},
                variant=variant.code,
            )
        if variant.template_version_id != template.approved_version_id:
            variant.template_version_id = template.approved_version_id
            variant.save(update_fields=["template_version"])
        try:
            community_selectors.template_render(
                template.approved_version,
                context=community_selectors.sample_context(),
                fields=variant.field_values or {},
                output=community_selectors.TEXT,
            )
        except ApplicationError as exc:
            raise _invalid(exc.code, exc.message, variant=variant.code, **(exc.details or {})) from None


def campaign_launch(*, campaign: Campaign, actor=None, now: datetime | None = None) -> Campaign:
    """Checks the campaign in full and schedules it: a one-off for its time (now when it
    has none), a recurring one for its next occurrence, a triggered one from now on."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = _locked(campaign)
        if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.PAUSED, CampaignStatus.SCHEDULED):
            raise Conflict(
                _("A %(status)s campaign cannot be launched.") % {"status": campaign.get_status_display()},
                code="campaign_not_launchable",
            )
        before = _audit_values(campaign)
        _check_fields({f: getattr(campaign, f) for f in FIELDS})
        if not campaign.segments and campaign.schedule != ScheduleKind.TRIGGERED:
            raise _invalid("no_audience", _("Choose at least one segment to send to."), field="segments")
        _check_variants(
            [VariantSpec(v.code, v.share, v.template.code) for v in campaign.variants.select_related("template")]
        )
        _pin_templates(campaign)
        if campaign.schedule == ScheduleKind.ONCE:
            if campaign.start_at is None:
                campaign.start_at = now
            elif campaign.start_at < now - PAST_GRACE and campaign.status == CampaignStatus.DRAFT:
                raise _invalid("schedule_in_past", _("The send time is in the past."), field="start_at")
        campaign.status = CampaignStatus.SCHEDULED
        campaign.save()
        audit_record(actor=actor, action="campaign.launch", obj=campaign, before=before, after=_audit_values(campaign))
        from campaigns.tasks import campaign_dispatch_task, campaign_resume_task  # they import the services

        if before["status"] == CampaignStatus.PAUSED:
            campaign_resume_task.delay_on_commit(campaign.pk)
        if campaign.schedule == ScheduleKind.ONCE and campaign.start_at <= now and before["status"] == "draft":
            campaign_dispatch_task.delay_on_commit(campaign.pk, "once", campaign.start_at.isoformat())
    return campaign


def _transition(*, campaign: Campaign, to: str, allowed: tuple, action: str, actor) -> Campaign:
    with transaction.atomic():
        campaign = _locked(campaign)
        if campaign.status == to:
            return campaign  # pausing a paused campaign changes nothing
        if campaign.status not in allowed:
            raise Conflict(
                _("A %(status)s campaign cannot be %(action)s.")
                % {"status": campaign.get_status_display(), "action": action},
                code="campaign_transition",
                details={"from": campaign.status, "to": to},
            )
        before = campaign.status
        campaign.status = to
        campaign.save(update_fields=["status", "updated_at"])
        audit_record(actor=actor, action=f"campaign.{to}", obj=campaign, changes={"status": [before, to]})
    return campaign


def campaign_pause(*, campaign: Campaign, actor=None) -> Campaign:
    """Stops handing over its deliveries (those still queued wait) until it is launched again."""
    return _transition(
        campaign=campaign,
        to=CampaignStatus.PAUSED,
        allowed=(CampaignStatus.SCHEDULED, CampaignStatus.RUNNING),
        action=_("paused"),
        actor=actor,
    )


def campaign_cancel(*, campaign: Campaign, actor=None) -> Campaign:
    """Ends the campaign; its deliveries not yet handed over are suppressed as cancelled."""
    from campaigns.models import Delivery, DeliveryStatus

    with transaction.atomic():
        campaign = _transition(
            campaign=campaign,
            to=CampaignStatus.CANCELLED,
            allowed=(CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.RUNNING, CampaignStatus.PAUSED),
            action=_("cancelled"),
            actor=actor,
        )
        Delivery.objects.filter(campaign=campaign, status__in=[DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED]).update(
            status=DeliveryStatus.SUPPRESSED,
            reason="cancelled",
            rule="campaign:cancelled",
            send_after=None,
            planned_at=None,
        )
    return campaign


def campaign_get(*, campaign_id) -> Campaign:
    try:
        return Campaign.objects.get(pk=int(campaign_id))
    except (Campaign.DoesNotExist, TypeError, ValueError):
        raise NotFound(_("No campaign %(id)s.") % {"id": campaign_id}, code="unknown_campaign") from None

"""Forms of the campaign pages and the contact policy's admin. They check the shape of
the input and put it in the services' terms; ``campaigns.services`` owns the rules (and
says no again when a form's check is bypassed). A service's refusal that names a field
(``details["field"]``) is shown at that field (``CampaignForm.add_service_error``)."""

import json

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from communities import selectors as community_selectors
from core.errors import ApplicationError
from core.timezones import operator_timezone
from core.validation import validate_form_instant
from segments import selectors as segment_selectors
from users.models import Channel

from .models import (
    CampaignStatus,
    CapRule,
    Category,
    ContactPolicy,
    ContentClass,
    OnHold,
    ScheduleKind,
    Trigger,
)
from .services import caps as cap_services
from .services.campaigns import FIELDS, PAST_GRACE, VariantSpec

MAX_VARIANTS = 4
_ANY = [("", _("any"))]


def segment_names() -> dict[str, str]:
    """Every segment of the catalogue: slug → its name for the operator."""
    return segment_selectors.segment_names()


def channel_choices() -> list[tuple[str, str]]:
    return [(value, label) for value, label in Channel.choices if value in settings.OPS_CHANNELS]


class CampaignFilterForm(forms.Form):
    status = forms.ChoiceField(label=_("status"), choices=_ANY + CampaignStatus.choices, required=False)


class OperatorDateTimeField(forms.DateTimeField):
    """A date and time typed in the operators' timezone (the one the pages show)."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")

    def to_python(self, value):
        with timezone.override(operator_timezone()):
            return super().to_python(value)

    def prepare_value(self, value):
        with timezone.override(operator_timezone()):
            return super().prepare_value(value)


def _cron_field(label, initial: str):
    return forms.CharField(
        label=label, max_length=20, required=False, initial=initial, widget=forms.TextInput(attrs={"size": 6})
    )


class CampaignForm(forms.Form):
    """A campaign's settings (its variants are ``VariantFormSet``). ``data_for_service``
    gives them as ``campaign_create`` / ``campaign_update`` take them."""

    name = forms.CharField(label=pgettext_lazy("campaign", "name"), max_length=120)
    channel = forms.ChoiceField(label=_("channel"))
    category = forms.ChoiceField(label=_("category"), choices=Category.choices, initial=Category.MARKETING)
    content_class = forms.ChoiceField(label=_("content class"), choices=ContentClass.choices, required=False)
    segments = forms.MultipleChoiceField(
        label=_("audience segments"),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 8}),
        help_text=_("Everyone in any of these segments…"),
    )
    excluded_segments = forms.MultipleChoiceField(
        label=_("excluded segments"),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 5}),
        help_text=_("…and in none of these."),
    )
    schedule = forms.ChoiceField(
        label=_("schedule"), choices=ScheduleKind.choices, initial=ScheduleKind.ONCE, widget=forms.RadioSelect
    )
    start_at = OperatorDateTimeField(
        label=_("send at"),
        required=False,
        validators=[validate_form_instant],
        help_text=_("In the operators' timezone; empty: when it is launched."),
    )
    cron_minute = _cron_field(_("minute"), "0")
    cron_hour = _cron_field(_("hour"), "10")
    cron_day = _cron_field(_("day of month"), "*")
    cron_month = _cron_field(_("month"), "*")
    cron_weekday = _cron_field(_("day of week"), "*")
    schedule_timezone = forms.CharField(
        label=_("schedule timezone"), max_length=64, required=False, help_text=_("e.g. Asia/Shanghai")
    )
    trigger = forms.ChoiceField(label=_("trigger"), required=False)
    trigger_days = forms.IntegerField(
        label=_("days"),
        min_value=0,
        max_value=365,
        required=False,
        help_text=_("Days after signup, or days before the points expire."),
    )
    trigger_segment = forms.ChoiceField(label=_("segment entered"), required=False)
    on_hold = forms.ChoiceField(
        label=_("when the policy holds a send"), choices=OnHold.choices, initial=OnHold.DEFER, widget=forms.RadioSelect
    )
    max_delay_hours = forms.IntegerField(label=_("maximum delay (hours)"), min_value=0, max_value=24 * 14, initial=24)
    goal_days = forms.IntegerField(label=_("conversion window (days)"), min_value=1, max_value=90, initial=7)
    cost = forms.DecimalField(
        label=_("cost"), required=False, min_value=0, max_digits=12, decimal_places=2, help_text=_("For the ROI.")
    )

    # A service's field → the form field that shows its refusal.
    SERVICE_FIELDS = {"cron": "cron_minute", "trigger_value": "trigger_days"}

    def __init__(self, *args, segments: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        options = sorted(segments.items(), key=lambda kv: kv[1])
        self.fields["channel"].choices = channel_choices()
        self.fields["segments"].choices = options
        self.fields["excluded_segments"].choices = options
        self.fields["trigger_segment"].choices = [("", "—"), *options]
        self.fields["trigger"].choices = [("", "—"), *((v, label) for v, label in Trigger.choices if v)]
        if not self.is_bound and not self.initial.get("schedule_timezone"):
            self.initial["schedule_timezone"] = settings.OPS_DEFAULT_CUSTOMER_TIMEZONE

    def clean(self):
        cleaned = super().clean()
        schedule = cleaned.get("schedule")
        if schedule == ScheduleKind.TRIGGERED:
            trigger = cleaned.get("trigger")
            if not trigger:
                self.add_error("trigger", _("A triggered campaign names its trigger."))
            elif trigger in (Trigger.SIGNUP_DAY, Trigger.POINTS_EXPIRING) and cleaned.get("trigger_days") is None:
                self.add_error("trigger_days", _("This trigger needs a number of days from 0 to 365."))
            elif trigger == Trigger.SEGMENT_ENTER and not cleaned.get("trigger_segment"):
                self.add_error("trigger_segment", _("Name the segment whose new members get it."))
        if schedule == ScheduleKind.ONCE:
            start_at = cleaned.get("start_at")
            if start_at is not None and start_at < timezone.now() - PAST_GRACE and self._start_changed():
                self.add_error("start_at", _("The send time is in the past."))
        return cleaned

    def _start_changed(self) -> bool:
        """A new time, or a changed one (the edit page does not refuse a paused
        campaign's time that has passed since it was set)."""
        initial = self.initial.get("start_at")
        if initial is None:
            return True
        return self.cleaned_data.get("start_at") != initial.replace(second=0, microsecond=0)

    def cron_fields(self) -> list:
        return [self[f"cron_{part}"] for part in ("minute", "hour", "day", "month", "weekday")]

    def cron(self) -> str:
        parts = [self.cleaned_data.get(f"cron_{p}") or "*" for p in ("minute", "hour", "day", "month", "weekday")]
        return " ".join(part.strip() or "*" for part in parts)

    def data_for_service(self) -> dict:
        data = self.cleaned_data
        schedule = data["schedule"]
        trigger = (data.get("trigger") or "") if schedule == ScheduleKind.TRIGGERED else ""
        trigger_value = ""
        if trigger in (Trigger.SIGNUP_DAY, Trigger.POINTS_EXPIRING):
            trigger_value = str(data.get("trigger_days"))
        elif trigger == Trigger.SEGMENT_ENTER:
            trigger_value = data.get("trigger_segment") or ""
        return {
            "name": data["name"].strip(),
            "channel": data["channel"],
            "category": data["category"],
            "content_class": data.get("content_class") or "",
            "segments": list(data.get("segments") or []),
            "excluded_segments": list(data.get("excluded_segments") or []),
            "schedule": schedule,
            "start_at": data.get("start_at") if schedule == ScheduleKind.ONCE else None,
            "cron": self.cron() if schedule == ScheduleKind.RECURRING else "",
            "schedule_timezone": (data.get("schedule_timezone") or "").strip()
            or settings.OPS_DEFAULT_CUSTOMER_TIMEZONE,
            "trigger": trigger,
            "trigger_value": trigger_value,
            "on_hold": data["on_hold"],
            "max_delay_hours": data["max_delay_hours"],
            "goal_days": data["goal_days"],
            "cost": data.get("cost"),
        }

    @classmethod
    def initial_of(cls, campaign) -> dict:
        """The form's initial values for an existing campaign (the edit page)."""
        initial = {field: getattr(campaign, field) for field in FIELDS}
        minute, hour, day, month, weekday = ([*campaign.cron.split(), "*", "*", "*", "*", "*"])[:5]
        initial.update(cron_minute=minute, cron_hour=hour, cron_day=day, cron_month=month, cron_weekday=weekday)
        if campaign.trigger == Trigger.SEGMENT_ENTER:
            initial["trigger_segment"] = campaign.trigger_value
        elif campaign.trigger_value.isdigit():
            initial["trigger_days"] = int(campaign.trigger_value)
        return initial

    def add_service_error(self, exc: ApplicationError) -> None:
        """Shows a service's refusal at the field it names, else above the form."""
        field = (exc.details or {}).get("field") if isinstance(exc.details, dict) else None
        if field == "trigger_value" and self.cleaned_data.get("trigger") == Trigger.SEGMENT_ENTER:
            field = "trigger_segment"
        field = self.SERVICE_FIELDS.get(field, field)
        if field == "variants" or field not in self.fields:
            field = None
        self.add_error(field, exc.message)


class VariantForm(forms.Form):
    """One A/B arm; an empty extra row is left out."""

    code = forms.CharField(label=_("variant"), max_length=8, widget=forms.TextInput(attrs={"size": 4}))
    share = forms.IntegerField(
        label=_("share (%)"), min_value=1, max_value=100, widget=forms.NumberInput(attrs={"style": "width:5em"})
    )
    template = forms.ChoiceField(label=_("template"))
    subject = forms.CharField(label=_("subject"), max_length=150, required=False)

    def __init__(self, *args, templates: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].choices = [("", "—"), *templates]


class _VariantFormSet(forms.BaseFormSet):
    def clean(self):
        super().clean()
        if any(self.errors):
            return
        codes = [f.cleaned_data["code"].strip() for f in self.forms if f.cleaned_data]
        if len(codes) != len(set(codes)):
            raise forms.ValidationError(_("Variants have distinct short codes (A, B…)."))
        total = sum(f.cleaned_data["share"] for f in self.forms if f.cleaned_data)
        if codes and total != 100:
            raise forms.ValidationError(_("The variants' shares add up to %(total)s%%, not 100%%.") % {"total": total})

    def specs(self) -> list[VariantSpec]:
        return [
            VariantSpec(f.cleaned_data["code"].strip(), f.cleaned_data["share"], f.cleaned_data["template"],
                        f.cleaned_data.get("subject") or "")
            for f in self.forms
            if f.cleaned_data
        ]  # fmt: skip


VariantFormSet = forms.formset_factory(
    VariantForm,
    formset=_VariantFormSet,
    extra=MAX_VARIANTS - 1,
    min_num=1,
    max_num=MAX_VARIANTS,
    validate_min=True,
    validate_max=True,
    absolute_max=MAX_VARIANTS,
)


def template_choices() -> list[tuple[str, str]]:
    """The templates a variant may use: active, with an approved version."""
    return [(t.code, f"{t.name} ({t.get_kind_display()})") for t in community_selectors.templates_usable()]


def variant_formset(data=None, *, templates: list[tuple[str, str]] | None = None) -> _VariantFormSet:
    templates = template_choices() if templates is None else templates
    initial = None if data is not None else [{"code": "A", "share": 100}]
    return VariantFormSet(data, initial=initial, form_kwargs={"templates": templates}, prefix="variants")


# --- the contact policy's admin ---------------------------------------------------------


class WindowsField(forms.CharField):
    """A cap's windows typed as JSON: ``[{"seconds": 10800, "limit": 1}, …]``."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 60})

    def prepare_value(self, value):
        if isinstance(value, list):
            return json.dumps(value, ensure_ascii=False)
        return value

    def to_python(self, value):
        text = super().to_python(value)
        if text in (None, ""):
            return None
        try:
            return json.loads(text)
        except (TypeError, ValueError):
            raise forms.ValidationError(
                _('Not JSON. Write the windows as [{"seconds": 10800, "limit": 1}, {"seconds": 86400, "limit": 7}].'),
                code="invalid_json",
            ) from None


def _service_errors(form: forms.Form, exc: ApplicationError) -> None:
    field = (exc.details or {}).get("field") if isinstance(exc.details, dict) else None
    form.add_error(field if field in form.fields else None, exc.message)


class CapRuleAdminForm(forms.ModelForm):
    """A frequency cap; ``cap_check`` refuses bad windows, codes and choices here with
    the field's reason, before ``cap_save`` is called (which checks them again)."""

    windows = WindowsField(
        label=_("windows"),
        required=False,  # none, or an empty list: the service says how many it takes
        help_text=_('At most "limit" marketing sends in any rolling "seconds": 3 h is 10800, a day 86400.'),
    )

    class Meta:
        model = CapRule
        fields = ["code", "name", "channel", "content_class", "windows", "is_active"]

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            cleaned.update(cap_services.cap_check(dict(cleaned), cap=self.instance if self.instance.pk else None))
        except ApplicationError as exc:
            _service_errors(self, exc)
        return cleaned


class ContactPolicyAdminForm(forms.ModelForm):
    class Meta:
        model = ContactPolicy
        fields = cap_services.POLICY_FIELDS

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            cleaned.update(cap_services.policy_check(dict(cleaned), policy=self.instance))
        except ApplicationError as exc:
            _service_errors(self, exc)
        return cleaned

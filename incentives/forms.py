"""Forms for the operator points pages: a manual adjustment and a leaderboard period."""

import uuid
from datetime import date, timedelta

from django import forms
from django.utils.translation import gettext_lazy as _

from core.validation import validate_form_instant

from .services import MAX_POINTS_PER_ENTRY

# Leaderboards read the event table; an unbounded period would scan all of it.
MAX_PERIOD_DAYS = 366
DEFAULT_PERIOD_DAYS = 30


class PointsAdjustForm(forms.Form):
    amount = forms.IntegerField(
        label=_("Points"),
        min_value=-MAX_POINTS_PER_ENTRY,
        max_value=MAX_POINTS_PER_ENTRY,
        help_text=_("Signed: 50 adds 50 points, -50 takes 50 points away."),
        # A text box (not type=number) so a leading minus sign is easy to type everywhere.
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    reason = forms.CharField(
        label=_("Reason"),
        max_length=200,
        help_text=_("Required. Recorded on the ledger entry and in the audit log."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    # Generated when the form is first rendered and carried through re-renders, so a
    # double submit (or a reload of the POST) posts the same idempotency key twice.
    key = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("key", uuid.uuid4())

    def clean_amount(self) -> int:
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError(_("Enter a non-zero number of points."), code="zero")
        return amount

    def clean_reason(self) -> str:
        # CharField strips already; this keeps the rule explicit next to the field.
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(_("A reason is required."), code="required")
        return reason

    def idempotency_key(self) -> str:
        return f"op:{self.cleaned_data['key']}"


class LeaderboardPeriodForm(forms.Form):
    """A period of whole days, both ends included, in the operators' timezone; each end
    within 1970-01-01 – 2100-01-01 (``core.validation``)."""

    start = forms.DateField(
        label=_("From"),
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        validators=[validate_form_instant],
    )
    end = forms.DateField(
        label=_("To"),
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        validators=[validate_form_instant],
    )

    def __init__(self, *args, today: date, **kwargs):
        self.today = today
        super().__init__(*args, **kwargs)
        defaults = self.default_period(today)
        self.initial.setdefault("start", defaults[0])
        self.initial.setdefault("end", defaults[1])

    @staticmethod
    def default_period(today: date) -> tuple[date, date]:
        return today - timedelta(days=DEFAULT_PERIOD_DAYS - 1), today

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        default_start, default_end = self.default_period(self.today)
        start = cleaned.get("start") or default_start
        end = cleaned.get("end") or default_end
        if start > end:
            raise forms.ValidationError(_("The start date must not be after the end date."), code="order")
        if (end - start).days + 1 > MAX_PERIOD_DAYS:
            raise forms.ValidationError(
                _("The period can be at most %(days)d days long."), code="too_long", params={"days": MAX_PERIOD_DAYS}
            )
        cleaned["start"], cleaned["end"] = start, end
        return cleaned

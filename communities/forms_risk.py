"""The risk page's form: which member, the step asked for, why, and for a mute how long.
It checks the shape (a known customer, known choices, a note); the rules (membership,
escalation, a mute's duration) are ``risk_action_record``'s, whose refusal the view
shows on the field it concerns."""

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from core.errors import NotFound
from users import selectors as users_selectors

from .models import RiskReason, RiskStep
from .services.risk import NOTE_MAX

# The durations operators pick from (minutes); the service accepts any from 1 minute to 30 days.
MUTE_PRESETS = [
    (10, pgettext_lazy("mute duration", "10 minutes")),
    (60, pgettext_lazy("mute duration", "1 hour")),
    (12 * 60, pgettext_lazy("mute duration", "12 hours")),
    (24 * 60, pgettext_lazy("mute duration", "1 day")),
    (3 * 24 * 60, pgettext_lazy("mute duration", "3 days")),
    (7 * 24 * 60, pgettext_lazy("mute duration", "7 days")),
    (30 * 24 * 60, pgettext_lazy("mute duration", "30 days")),
]


class RiskActionForm(forms.Form):
    customer = forms.CharField(
        label=_("Member (customer external id)"),
        max_length=64,
        help_text=_("The customer's external id; they must be a member of this group now."),
    )
    requested_step = forms.ChoiceField(
        label=pgettext_lazy("risk", "Step"), choices=RiskStep.choices, widget=forms.RadioSelect
    )
    reason = forms.ChoiceField(label=_("Reason"), choices=RiskReason.choices)
    mute_minutes = forms.TypedChoiceField(
        label=_("Mute for"),
        choices=[("", _("— no mute —")), *MUTE_PRESETS],
        coerce=int,
        empty_value=None,
        required=False,
        help_text=_("Needed for a mute, and for a warning that escalates to one."),
    )
    note = forms.CharField(
        label=_("Why (what they did)"),
        max_length=NOTE_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean_customer(self):
        external_id = self.cleaned_data["customer"].strip()
        try:
            return users_selectors.customer_ref(external_id=external_id)
        except NotFound:
            raise forms.ValidationError(
                _("No customer with the external id %(id)s.") % {"id": external_id}, code="unknown_customer"
            ) from None

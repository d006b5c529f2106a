"""The health pages' form: an on-demand roll-up of a range of days. The range rules
(not reversed, at most 366 days, not in the future) are the service's
(``communities.services.health.health_range_check``), so the page and the task agree."""

from django import forms
from django.utils.translation import gettext_lazy as _

from core.validation import validate_form_instant


class RollupForm(forms.Form):
    day_from = forms.DateField(
        label=_("From"), widget=forms.DateInput(attrs={"type": "date"}), validators=[validate_form_instant]
    )
    day_to = forms.DateField(
        label=_("To"), widget=forms.DateInput(attrs={"type": "date"}), validators=[validate_form_instant]
    )

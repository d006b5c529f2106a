"""Forms of the alerts pages: the list's filters and the dismissal's reason."""

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import AlertStatus, Severity


class AlertFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("open and acknowledged")), *AlertStatus.choices]
    )
    severity = forms.TypedChoiceField(
        label=_("Severity at least"),
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "—"), *Severity.choices],
    )
    group = forms.TypedChoiceField(label=_("Group"), required=False, coerce=int, empty_value=None)

    def __init__(self, data=None, *, groups=(), **kwargs):
        super().__init__(data, **kwargs)
        self.fields["group"].choices = [("", _("every group")), *((g.pk, g.name) for g in groups)]

    def filters(self) -> dict:
        """The valid filters (an invalid value is left out, the form shows why)."""
        if not self.is_bound:
            return {}
        self.is_valid()
        return {k: v for k, v in self.cleaned_data.items() if v not in (None, "")}


class DismissForm(forms.Form):
    reason = forms.CharField(
        label=_("Why is it a false positive?"),
        max_length=300,
        widget=forms.TextInput(attrs={"placeholder": _("e.g. a customer quoting our refund policy")}),
    )

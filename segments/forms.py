"""Forms for the segment pages and the segments admin. They check the shape of the
input; the services (``segments.services``) own the rules
and are called by the views."""

import json
from datetime import date

from django import forms
from django.utils.translation import gettext_lazy as _

from core.json import json_loads_bounded
from core.validation import validate_form_instant

from .definitions import DefinitionError, compile_definition
from .models import RuleSet, Segment

MAX_UPLOAD_BYTES = 20 * 1024 * 1024


def definition_error_text(exc: DefinitionError) -> str:
    details = exc.details or {}
    return f"{details.get('path', 'definition')}: {details.get('message', exc.message)}"


class DefinitionField(forms.CharField):
    """A JSON object typed (or written by the builder's script) into a textarea."""

    widget = forms.Textarea(attrs={"rows": 10, "spellcheck": "false", "class": "code"})

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return {}
        try:
            parsed = json_loads_bounded(value, clean_text=True)  # ≤ 64 deep, no NUL (core.json)
        except ValueError as exc:
            raise forms.ValidationError(
                _("The definition is not valid JSON: %(error)s"), params={"error": exc}, code="invalid_json"
            ) from None
        if not isinstance(parsed, dict):
            raise forms.ValidationError(
                _("The definition must be a JSON object with 'op' and 'conditions'."), code="invalid_json"
            )
        return parsed

    def prepare_value(self, value):
        if isinstance(value, dict):
            return json.dumps(value, ensure_ascii=False, indent=2)
        return value


class SegmentForm(forms.Form):
    name = forms.CharField(label=_("Segment name"), max_length=100)
    slug = forms.SlugField(
        label=_("Slug"),
        max_length=60,
        required=False,
        help_text=_(
            "Used in links and the API: lower-case letters, digits, '-' and '_'. "
            "Left empty, it is made from the name (Chinese in pinyin, e.g. 高价值 VIP → gao-jia-zhi-vip)."
        ),
    )
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    definition = DefinitionField(label=_("Definition (JSON)"))
    is_active = forms.BooleanField(
        label=_("Active"),
        required=False,
        initial=True,
        help_text=_(
            "An inactive segment is left out of the segment list, the customers' pages and the recomputes; "
            "its definition is kept, so it can be switched on again."
        ),
    )

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            # The slug names the segment in links and the API: it does not change.
            self.fields["slug"].disabled = True


class StaticUploadForm(forms.Form):
    name = forms.CharField(label=_("Segment name"), max_length=100)
    slug = forms.SlugField(
        label=_("Slug"),
        max_length=60,
        required=False,
        help_text=_("Uploading again to the same slug replaces that static segment's members."),
    )
    file = forms.FileField(
        label=_("File of external ids"),
        help_text=_(
            "CSV or text, one customer external id per line (first column); an optional header row 'external_id'."
        ),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                _("The file is larger than %(mb)s MB."), params={"mb": MAX_UPLOAD_BYTES // (1024 * 1024)}
            )
        return upload


class TransitionForm(forms.Form):
    start = forms.DateField(
        label=_("From"),
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        validators=[validate_form_instant],  # 1970–2100 (core.validation)
    )
    end = forms.DateField(
        label=_("To"),
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        validators=[validate_form_instant],  # 1970–2100 (core.validation)
    )

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if isinstance(start, date) and isinstance(end, date) and start > end:
            self.add_error("end", _("The end date comes before the start date."))
        return data


# --- admin ---------------------------------------------------------------------------


class RuleSetAdminForm(forms.ModelForm):
    """Every threshold of a rule set. ``RuleSet.clean`` (called by the ModelForm's own
    validation) runs ``segments.rules.validate_rule_set``, so a rule set that makes no
    sense is refused here with the field's message, before the service is called."""

    class Meta:
        model = RuleSet
        fields = [
            "note",
            "rfm_window_days",
            "tier_super_vip_annual",
            "tier_core_annual",
            "tier_active_monthly",
            "tier_normal_monthly",
            "new_days",
            "mature_min_orders",
            "churn_warning_p_alive",
            "churned_p_alive",
            "warning_inactive_days",
            "churned_inactive_days",
            "clv_horizon_days",
            "rfm_groups",
            "rfm_segments",
        ]


class SegmentAdminForm(forms.ModelForm):
    class Meta:
        model = Segment
        fields = ["name", "slug", "description", "kind", "definition", "is_active"]

    def clean(self):
        data = super().clean()
        if data.get("kind", getattr(self.instance, "kind", None)) == Segment.Kind.DYNAMIC and "definition" in data:
            try:
                compile_definition(data["definition"], run_id=None)
            except DefinitionError as exc:
                self.add_error("definition", definition_error_text(exc))
        return data

"""Forms of the SOP template pages. They check the shape of the input;
``communities.services.templates`` and ``communities.templating`` own the rules (and
say no again if a form's check is bypassed)."""

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from . import templating
from .models import SopTemplate, TemplateKind
from .services.templates import LANGUAGES, NOTE_MAX

LANGUAGE_LABELS = {"zh-hans": _("Simplified Chinese"), "en": _("English")}


class TemplateMetaForm(forms.Form):
    code = forms.SlugField(label=_("code"), max_length=SopTemplate._meta.get_field("code").max_length)
    name = forms.CharField(label=_("name"), max_length=SopTemplate._meta.get_field("name").max_length)
    kind = forms.ChoiceField(label=_("type"), choices=TemplateKind.choices)
    language = forms.ChoiceField(label=_("language"), choices=[(code, LANGUAGE_LABELS[code]) for code in LANGUAGES])


class VersionBodyForm(forms.Form):
    body = forms.CharField(
        label=_("text"),
        max_length=templating.BODY_MAX,
        widget=forms.Textarea(attrs={"rows": 10}),
        error_messages={"required": _("The template has no text.")},
    )


class FieldDeclarationForm(forms.Form):
    """One field the operator fills in when using the template (an empty row is skipped)."""

    name = forms.CharField(label=_("name"), max_length=32, required=False)
    label = forms.CharField(
        label=pgettext_lazy("sop template", "label"), max_length=templating.LABEL_MAX, required=False
    )
    type = forms.ChoiceField(label=_("type"), choices=list(templating.FIELD_TYPES.items()), required=False)
    required = forms.BooleanField(label=pgettext_lazy("sop template", "required"), required=False, initial=True)


FieldDeclarationFormSet = forms.formset_factory(
    FieldDeclarationForm, extra=3, max_num=templating.FIELDS_MAX, validate_max=True
)


def declared_fields(formset) -> list[dict]:
    """The rows of a valid formset as the service takes them (empty rows left out)."""
    rows = []
    for row in formset.cleaned_data:
        if row and (row.get("name") or row.get("label")):
            rows.append(
                {
                    "name": row["name"].strip(),
                    "label": row["label"].strip(),
                    "type": row["type"] or "text",
                    "required": bool(row.get("required")),
                }
            )
    return rows


class ReviewForm(forms.Form):
    note = forms.CharField(
        label=_("review note"), max_length=NOTE_MAX, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class PreviewForm(forms.Form):
    """Who the preview is for: a customer by external id (empty: the built-in sample
    customer), a group (optional), and one box per declared field."""

    customer = forms.CharField(
        label=_("customer (external id)"),
        max_length=64,
        required=False,
        help_text=_("Empty: the built-in sample customer."),
    )
    # Any id: the view looks it up among the groups the viewer may see (404 otherwise).
    group = forms.IntegerField(label=_("group"), required=False, widget=forms.Select)

    def __init__(self, *args, declared: list[dict], groups, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["group"].widget.choices = [("", "—"), *((g.pk, g.name) for g in groups)]
        self.declared = declared
        for field in declared:
            widget = forms.DateInput(attrs={"type": "date"}) if field["type"] == "date" else forms.TextInput()
            self.fields[f"field_{field['name']}"] = forms.CharField(
                label=field["label"],
                required=False,
                widget=widget,
                help_text=templating.FIELD_TYPES[field["type"]],
            )

    def field_values(self) -> dict[str, str]:
        return {f["name"]: self.cleaned_data.get(f"field_{f['name']}", "") for f in self.declared}

    def add_field_errors(self, details: dict) -> None:
        for name, reasons in details.items():
            key = f"field_{name}"
            for reason in reasons:
                self.add_error(key if key in self.fields else None, reason)

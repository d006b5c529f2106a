"""The form that asks the operator for an SOP template's declared fields before a
canned reply is filled in (Chatwoot never asks: its variables stay blank). One box per
field; the types are checked by ``communities`` when the template is rendered, and its
reasons are shown on the boxes."""

from django import forms

PREFIX = "cf"


class CannedFieldsForm(forms.Form):
    prefix = PREFIX

    def __init__(self, *args, declared, **kwargs):
        super().__init__(*args, **kwargs)
        self.declared = list(declared)
        for field in self.declared:
            widget = forms.DateInput(attrs={"type": "date"}) if field["type"] == "date" else forms.TextInput()
            self.fields[field["name"]] = forms.CharField(
                label=field["label"], required=False, max_length=500, widget=widget
            )

    def values(self) -> dict[str, str]:
        return {f["name"]: self.cleaned_data.get(f["name"], "") for f in self.declared}

    def add_reasons(self, details: dict) -> None:
        for name, reasons in (details or {}).items():
            for reason in reasons:
                self.add_error(name if name in self.fields else None, reason)

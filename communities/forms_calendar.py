"""The content calendar's forms: plan (or edit) a post, mark it done, skip it. They
check shapes; the rules (rights, a planned post only, an active template) are the
services' (``communities.services.calendar``)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from core.validation import validate_form_instant

from .models import ContentClass, TemplateKind
from .selectors.calendar import templates_usable
from .services.calendar import MAX_POSTED_TEXT


class PostForm(forms.Form):
    due_on = forms.DateField(
        label=_("Due on"), widget=forms.DateInput(attrs={"type": "date"}), validators=[validate_form_instant]
    )
    due_time = forms.TimeField(label=_("Time"), required=False, widget=forms.TimeInput(attrs={"type": "time"}))
    kind = forms.ChoiceField(label=_("Type"), choices=TemplateKind.choices)
    content_class = forms.ChoiceField(
        label=_("Content class"),
        choices=ContentClass.choices,
        help_text=_("The 7-2-1 mix: 70% everyday value, 20% surprise, 10% advanced."),
    )
    title = forms.CharField(label=_("Title"), max_length=200)
    template = forms.ModelChoiceField(
        label=_("SOP template"),
        queryset=templates_usable(),
        required=False,
        help_text=_("Optional: the active SOP template the post is written from."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = templates_usable()


class DoneForm(forms.Form):
    posted_text = forms.CharField(
        label=_("Text as posted"), required=False, max_length=MAX_POSTED_TEXT, widget=forms.Textarea(attrs={"rows": 3})
    )


class SkipForm(forms.Form):
    reason = forms.CharField(label=_("Why skipped"), required=False, max_length=300)

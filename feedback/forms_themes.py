"""Forms for the themes pages: rename a theme, hand it to the roadmap, set a roadmap
item's status. They check the shape of the input; ``feedback.services.themes`` owns the
rules (and says no again if a form's check is bypassed)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import RoadmapItem, Theme

THEME_NAME_MAX = Theme._meta.get_field("name").max_length
ROADMAP_TITLE_MAX = RoadmapItem._meta.get_field("title").max_length


class ThemeRenameForm(forms.Form):
    name = forms.CharField(
        label=_("Theme name"),
        max_length=THEME_NAME_MAX,
        error_messages={"required": _("A theme needs a name.")},
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


class RoadmapHandoffForm(forms.Form):
    title = forms.CharField(
        label=_("Roadmap title"),
        max_length=ROADMAP_TITLE_MAX,
        error_messages={"required": _("A roadmap item needs a title.")},
        help_text=_("What the product team will see on the roadmap."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


class RoadmapStatusForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Roadmap status"),
        choices=RoadmapItem.Status.choices,
        error_messages={"invalid_choice": _("Unknown roadmap status: %(value)s.")},
    )

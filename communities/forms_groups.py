"""Forms of the groups pages: the list's filters, a group's settings, adding a member,
a member's role and leaving, and giving an operator rights on the group. They check the
shape of the input; ``communities.services.groups`` owns the rules (and says no again
when a form's check is bypassed)."""

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from core.validation import validate_form_instant

from .models import CommunityGroup, GroupStatus, MemberRole, Platform

_ANY = [("", _("any"))]


class GroupFilterForm(forms.Form):
    q = forms.CharField(label=_("Name or code"), required=False, max_length=120)
    platform = forms.ChoiceField(label=_("platform"), choices=_ANY + Platform.choices, required=False)
    status = forms.ChoiceField(label=_("status"), choices=_ANY + GroupStatus.choices, required=False)
    tag = forms.ChoiceField(label=_("tag"), required=False)

    def __init__(self, *args, tags: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tag"].choices = _ANY + [(t, t) for t in tags]

    def filters(self) -> dict:
        if not self.is_valid():
            return {}
        return {k: v for k, v in self.cleaned_data.items() if v}


class TagsField(forms.CharField):
    """Tags typed as words separated by commas (，too); the service tidies and checks them."""

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        text = super().to_python(value) or ""
        return [t.strip() for t in text.replace("，", ",").split(",") if t.strip()]


class GroupForm(forms.ModelForm):
    """A group's settings. ``owner`` is offered only to those who manage every group
    (a manager's new group is their own; see ``group_save``)."""

    tags = TagsField(label=_("tags"), required=False, help_text=_("Words separated by commas."))

    class Meta:
        model = CommunityGroup
        fields = [
            "code",
            "name",
            "platform",
            "platform_group_id",
            "theme",
            "tags",
            "owner",
            "capacity",
            "status",
            "description",
        ]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, may_set_owner: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if may_set_owner:
            self.fields["owner"].queryset = get_user_model().objects.filter(is_active=True).order_by("username")
        else:
            del self.fields["owner"]


class MemberAddForm(forms.Form):
    customer = forms.CharField(label=_("Customer (external id)"), max_length=64)
    role = forms.ChoiceField(label=_("role"), choices=MemberRole.choices, initial=MemberRole.MEMBER)
    joined_at = forms.DateTimeField(
        label=_("joined at"), required=False, validators=[validate_form_instant], help_text=_("Empty: now.")
    )
    platform_member_id = forms.CharField(label=_("platform member id"), max_length=128, required=False)
    invited_by = forms.CharField(label=_("Invited by (external id)"), max_length=64, required=False)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(label=_("role"), choices=MemberRole.choices)


class MemberLeaveForm(forms.Form):
    reason = forms.CharField(label=_("why they left"), max_length=200, required=False)


class StaffGrantForm(forms.Form):
    username = forms.CharField(label=_("Operator account"), max_length=150)
    member = forms.CharField(
        label=_("As the member (external id)"),
        max_length=64,
        required=False,
        help_text=_("The core member this account is in the group, if any."),
    )
    can_manage = forms.BooleanField(label=_("can manage the group"), required=False)
    can_post = forms.BooleanField(label=_("can post SOP content"), required=False, initial=True)
    can_handle_risk = forms.BooleanField(label=_("can handle risk members"), required=False)
    can_handle_alerts = forms.BooleanField(label=_("can handle keyword alerts"), required=False)

"""The ticket pages' forms. They validate the shape of what an operator sent (known
choices, a customer that exists, a non-blank reply); the rules (the workflow, who may be
assigned, merging, attachment size and type) are the services', which refuse with an
``ApplicationError`` the view shows."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from core.errors import NotFound
from users import selectors as users_selectors

from . import workflow
from .models import Category, Difficulty, Impact, Priority, Severity, Source, Status, Ticket
from .services.tickets import AttachmentIn


def _label(field: str):
    return capfirst(Ticket._meta.get_field(field).verbose_name)


def _blank(label) -> list[tuple[str, str]]:
    return [("", label)]


STATUS_FILTERS = [
    ("open", pgettext_lazy("ticket status filter", "Open (not resolved)")),
    ("all", pgettext_lazy("ticket status filter", "All statuses")),
    *Status.choices,
]
SLA_FILTERS = [
    ("", pgettext_lazy("SLA filter", "Any SLA state")),
    ("breached", pgettext_lazy("SLA filter", "Breached")),
    ("warning", pgettext_lazy("SLA filter", "Warning")),
    ("paused", pgettext_lazy("SLA filter", "Paused (waiting on customer)")),
    ("on_track", pgettext_lazy("SLA filter", "On track")),
]
#: the queue's filters that are not the default; the form drops the others
FILTER_FIELDS = ("team", "assignee", "status", "priority", "category", "sla", "q", "customer")


class QueueFilterForm(forms.Form):
    team = forms.ChoiceField(label=_label("team"), required=False)
    assignee = forms.ChoiceField(label=_label("assignee"), required=False)
    status = forms.ChoiceField(label=_label("status"), required=False, choices=STATUS_FILTERS)
    priority = forms.ChoiceField(
        label=_label("priority"), required=False, choices=_blank(_("Any priority")) + Priority.choices
    )
    category = forms.ChoiceField(
        label=_label("category"), required=False, choices=_blank(_("Any category")) + Category.choices
    )
    sla = forms.ChoiceField(label=_("SLA"), required=False, choices=SLA_FILTERS)
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    customer = forms.CharField(label=_("Customer external id"), required=False, max_length=64)

    def __init__(self, data, *, teams, rosters):
        super().__init__(data)
        self.fields["team"].choices = _blank(_("Every team I see")) + [(t.code, str(t)) for t in teams]
        people = {u.pk: u for _team, users in rosters for u in users}
        self.fields["assignee"].choices = [
            ("", _("Anyone")),
            ("me", _("Me")),
            ("none", _("Unassigned")),
            *[(str(pk), u.get_username()) for pk, u in sorted(people.items(), key=lambda kv: kv[1].get_username())],
        ]

    def filters(self) -> dict:
        """The valid filters, the defaults for any that are not."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {f: data[f] for f in FILTER_FIELDS if data.get(f) and f not in self.errors}


class TicketIdsField(forms.Field):
    """The ticket numbers the queue's checkboxes post."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {"required": _("Tick at least one ticket."), "invalid": _("Not ticket numbers.")}

    def to_python(self, value):
        if not value:
            return []
        try:
            ids = sorted({int(v) for v in value})
        except (TypeError, ValueError):
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None
        if any(i < 1 for i in ids) or len(ids) > 500:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return ids


class BulkAssignForm(forms.Form):
    prefix = "bulk"
    tickets = TicketIdsField()
    team = forms.ChoiceField(label=_label("team"), error_messages={"required": _("Choose the team to assign to.")})
    assignee = forms.ChoiceField(label=_label("assignee"), required=False)

    def __init__(self, data=None, *, teams, rosters):
        super().__init__(data)
        self.fields["team"].choices = _blank("—") + [(t.code, str(t)) for t in teams]
        self.fields["assignee"].choices = _assignee_choices(rosters)


def _assignee_choices(rosters) -> list:
    """An optgroup per team: the people who can take its tickets."""
    return [("", _("Nobody (unassigned)"))] + [
        (str(team), [(str(u.pk), u.get_username()) for u in users]) for team, users in rosters if users
    ]


class ReplyForm(forms.Form):
    prefix = "reply"
    THEN = [("", _("Send")), ("wait", _("Send and wait on customer")), ("resolve", _("Send and resolve"))]

    body = forms.CharField(
        label=_("Reply to the customer"),
        widget=forms.Textarea(attrs={"rows": 6}),
        max_length=20_000,
        error_messages={"required": _("Write the reply before sending it.")},
    )
    then = forms.ChoiceField(
        choices=THEN,
        required=False,
        error_messages={
            "invalid_choice": _("Unknown follow-up: send, send and wait on customer, or send and resolve."),
        },
    )


class NoteForm(forms.Form):
    prefix = "note"
    body = forms.CharField(
        label=_("Internal note"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=20_000,
        error_messages={"required": _("Write the note before adding it.")},
    )


class AssignForm(forms.Form):
    prefix = "assign"
    team = forms.ChoiceField(label=_label("team"), required=False)
    assignee = forms.ChoiceField(label=_label("assignee"), required=False)

    def __init__(self, data=None, *, teams, rosters, initial=None):
        super().__init__(data, initial=initial)
        self.fields["team"].choices = _blank(_("No team (triage)")) + [(t.code, str(t)) for t in teams]
        self.fields["assignee"].choices = _assignee_choices(rosters)


class TransitionForm(forms.Form):
    action = forms.ChoiceField(choices=[(a, label) for a, label in workflow.ACTION_LABELS.items()])


class TicketUpdateForm(forms.Form):
    """Category and the priority's inputs. An unchanged priority with new impact,
    severity or difficulty lets the matrix decide again (see ``ticket_update``)."""

    prefix = "edit"

    category = forms.ChoiceField(label=_label("category"), choices=Category.choices)
    priority = forms.ChoiceField(label=_label("priority"), choices=Priority.choices)
    impact = forms.ChoiceField(label=_label("impact"), choices=Impact.choices)
    severity = forms.ChoiceField(label=_label("severity"), choices=Severity.choices)
    difficulty = forms.ChoiceField(label=_label("difficulty"), choices=Difficulty.choices)

    def changes(self, ticket: Ticket) -> dict:
        """What differs from the ticket, as ``ticket_update``'s arguments."""
        return {f: v for f, v in self.cleaned_data.items() if v != getattr(ticket, f)}


class MergeForm(forms.Form):
    prefix = "merge"
    into = forms.IntegerField(
        label=_("Merge this ticket into #"),
        min_value=1,
        error_messages={"required": _("Give the number of the ticket to merge into.")},
    )


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        one = super().clean
        if isinstance(data, list | tuple):
            return [one(d, initial) for d in data]
        return [one(data, initial)] if data else []


class TicketNewForm(forms.Form):
    """A ticket customer service opens by hand (a call, a social-media post)."""

    source = forms.ChoiceField(
        label=_label("source"),
        choices=[(Source.SERVICE, Source.SERVICE.label), (Source.SOCIAL, Source.SOCIAL.label)],
        initial=Source.SERVICE,
    )
    customer = forms.CharField(
        label=_("Customer external id"),
        required=False,
        max_length=64,
        help_text=_("Leave empty when the customer is not known."),
    )
    category = forms.ChoiceField(label=_label("category"), choices=Category.choices)
    subject = forms.CharField(label=_label("subject"), max_length=200)
    body = forms.CharField(label=_label("body"), widget=forms.Textarea(attrs={"rows": 6}), max_length=20_000)
    priority = forms.ChoiceField(
        label=_label("priority"),
        required=False,
        choices=_blank(_("Decided by the priority matrix")) + Priority.choices,
    )
    impact = forms.ChoiceField(label=_label("impact"), choices=Impact.choices, initial=Impact.ONE)
    severity = forms.ChoiceField(label=_label("severity"), choices=Severity.choices, initial=Severity.MINOR)
    difficulty = forms.ChoiceField(label=_label("difficulty"), choices=Difficulty.choices, initial=Difficulty.EASY)
    attachments = MultipleFileField(label=_("Attachments"), required=False)

    def clean_customer(self):
        external_id = self.cleaned_data["customer"].strip()
        if not external_id:
            return None
        try:
            return users_selectors.customer_ref(external_id=external_id)
        except NotFound:
            raise ValidationError(
                _("No customer has the external id “%(id)s”."), code="unknown_customer", params={"id": external_id}
            ) from None

    def attachments_in(self, limit: int) -> list[AttachmentIn]:
        """The uploads as the services take them. A file over ``limit`` is read only to
        ``limit + 1`` bytes: enough for ``attachments_check`` to refuse it by size."""
        return [
            AttachmentIn(name=f.name, content_type=f.content_type or "", content=f.read(limit + 1))
            for f in self.cleaned_data.get("attachments") or []
        ]

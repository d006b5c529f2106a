"""Admin for the feedback app: the rules admins edit, the tickets (read-mostly, with
CSV/XLSX import and export) and the records the queue leaves behind (read-only).

One write path. A rule's save, delete, inline edit or list edit is a call of
``feedback.services.rules`` (``rule_save`` / ``rule_delete``: checked, audited from → to);
the form runs the service's own check first (``rule_check``), so a refused edit is a
form error with the service's message and nothing is written. A ticket's edit is
``ticket_update`` (category, priority and its inputs) and ``ticket_assign`` (team and
person); the form tries them in a savepoint it rolls back, so their refusals show on
the form too. Tickets are history: never deleted here, and added only by the import
(each row a ``ticket_open``) — the API and the operator pages open the rest.

The rules are the admins' (``core.roles``): other roles, even with admin-site access,
get 403 on them. Every list uses ``ScaledListMixin`` and reads its relations in the
list's one query."""

import json

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from import_export.admin import ImportExportModelAdmin

from core import exports
from core.admin_base import ReadOnlyAdmin, ScaledListMixin
from core.errors import ApplicationError
from core.json import BoundedJSONDecoder
from segments.models import Tier

from .models import (
    Attachment,
    BusinessCalendar,
    CalendarDate,
    CannedReply,
    CsatResponse,
    Escalation,
    Message,
    NpsResponse,
    NpsSurvey,
    Priority,
    PriorityRule,
    RoadmapItem,
    SlaPolicy,
    SlaTarget,
    Team,
    Theme,
    Ticket,
    TicketEvent,
    VipRule,
)
from .resources import TicketResource
from .selectors import sla as sla_selectors
from .selectors.tickets import ticket_visible_q, tickets_visible
from .services import rules
from .services import tickets as ticket_services


def _pretty_json(value) -> str:
    return format_html(
        '<pre style="margin:0;white-space:pre-wrap">{}</pre>',
        json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str),
    )


def _ticket_number(term: str) -> int | None:
    """ "#42" or "42" → 42 (a search term that names a ticket), else None."""
    term = term.strip().removeprefix("#")
    return int(term) if term.isdigit() and len(term) <= 9 else None


# Some relations of the records have no verbose name of their own (the clock's and the
# sweep's internals): these columns and filters carry the translated labels.


def _titled_filter(title):
    """A related-field filter titled ``title`` (the field has no translated verbose name)."""

    class Filter(admin.RelatedFieldListFilter):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.title = title

    return Filter


@admin.display(description=_("ticket"), ordering="ticket_id")
def _ticket_column(obj) -> str:
    return f"#{obj.ticket_id}"


@admin.display(description=_("team"))
def _team_column(obj) -> str:
    return str(obj.team) if obj.team_id else "—"


@admin.display(description=_("priority"))
def _priority_change(obj: Escalation) -> str:
    if not obj.priority_from and not obj.priority_to:
        return "—"
    labels = dict(Priority.choices)
    return f"{labels.get(obj.priority_from, obj.priority_from)} → {labels.get(obj.priority_to, obj.priority_to)}"


# --- rules ---------------------------------------------------------------------------


class RuleForm(forms.ModelForm):
    """The model's validation, then the service's (``rules.rule_check``): whatever the
    save would refuse is refused here, on the field it concerns, with its message."""

    #: JSON list fields whose empty box means "none" (an empty list), not null
    list_fields = ("tiers", "rfm_groups", "workday_hours")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if isinstance(field, forms.JSONField):
                field.decoder = BoundedJSONDecoder  # nested at most 64 deep (core.json)

    def clean(self):
        cleaned = super().clean()
        for name in self.list_fields:
            if name in cleaned and cleaned[name] is None:
                cleaned[name] = []
        if "weekly_hours" in cleaned and cleaned["weekly_hours"] is None:
            cleaned["weekly_hours"] = {}
        return cleaned

    def _post_clean(self):
        super()._post_clean()
        if self._errors:
            return
        members = self.cleaned_data.get("members") if "members" in self.fields else None
        try:
            rules.rule_check(obj=self.instance, members=members)
        except ApplicationError as exc:
            for field, message in rules.rule_problems(exc):
                self.add_error(field if field in self.fields else None, message)


class _RuleAdmin(ScaledListMixin, admin.ModelAdmin):
    form = RuleForm

    def has_view_permission(self, request, obj=None):
        # The rules are the admins': reading them here comes with the right to change them.
        return self.has_change_permission(request, obj)

    def get_changelist_form(self, request, **kwargs):
        # A list edit (list_editable) is checked and saved like the change form.
        return super().get_changelist_form(request, form=self.form, **kwargs)

    def rule_members(self, form):
        """A team's members as the form has them (the other rules have none)."""
        return None

    def save_model(self, request, obj, form, change):
        rules.rule_save(
            obj=obj,
            actor=request.user,
            changed_fields=form.changed_data if change else None,
            members=self.rule_members(form),
        )

    def save_related(self, request, form, formsets, change):
        # No form.save_m2m(): rule_save set the row's relations (a team's members) itself.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request, form, formset, change):
        formset.save(commit=False)  # sorts the rows into new, changed and deleted; writes nothing
        for obj in formset.deleted_objects:
            rules.rule_delete(obj=obj, actor=request.user)
        for obj, changed in formset.changed_objects:
            rules.rule_save(obj=obj, actor=request.user, changed_fields=changed)
        for obj in formset.new_objects:
            rules.rule_save(obj=obj, actor=request.user)

    def delete_model(self, request, obj):
        rules.rule_delete(obj=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            rules.rule_delete(obj=obj, actor=request.user)


class BusinessCalendarForm(RuleForm):
    class Meta:
        help_texts = {
            "weekly_hours": _(
                'Weekday (1 Monday … 7 Sunday) → list of [start, end] spans, e.g. {"1": [["09:00", "12:00"], '
                '["13:00", "18:00"]], "2": [["09:00", "18:00"]]}. A weekday left out has no working time; '
                "24:00 ends the day."
            ),
            "timezone": _("An IANA timezone name, e.g. Asia/Shanghai."),
        }


class CalendarDateInline(admin.TabularInline):
    model = CalendarDate
    form = RuleForm
    extra = 0
    fields = ["date", "kind", "name"]


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(_RuleAdmin):
    form = BusinessCalendarForm
    list_display = ["name", "timezone", "china_holidays", "updated_at"]
    search_fields = ["name"]
    inlines = [CalendarDateInline]

    def changelist_view(self, request, extra_context=None):
        year = sla_selectors.china_holidays_gap(today=timezone.localdate())
        if year is not None:
            # The library follows the State Council's yearly notice; until it has the year,
            # the clock would count that year's holidays as working days.
            messages.warning(
                request,
                _(
                    "The holiday library has no data for %(year)s yet: add %(year)s's public holidays and "
                    "make-up working days to the calendars below (calendar dates), or upgrade chinese-calendar."
                )
                % {"year": year},
            )
        return super().changelist_view(request, extra_context)


@admin.register(Team)
class TeamAdmin(_RuleAdmin):
    list_display = ["__str__", "code", "lead", "calendar", "member_count"]
    list_select_related = ["lead", "calendar"]
    filter_horizontal = ["members"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("members"))

    @admin.display(description=_("members"), ordering="member_count")
    def member_count(self, obj: Team) -> int:
        return obj.member_count

    def rule_members(self, form):
        return form.cleaned_data.get("members")


@admin.register(SlaPolicy)
class SlaPolicyAdmin(_RuleAdmin):
    list_display = ["__str__", "first_response_minutes", "resolution_minutes", "business_hours", "warn_share"]
    list_filter = ["business_hours"]
    ordering = ["priority"]


@admin.register(PriorityRule)
class PriorityRuleAdmin(_RuleAdmin):
    list_display = ["impact", "severity", "difficulty", "priority"]
    list_editable = ["priority"]  # saved through rule_save like the change form (see _RuleAdmin)
    list_filter = ["impact", "severity", "difficulty", "priority"]


class VipRuleForm(RuleForm):
    class Meta:
        help_texts = {
            "tiers": format_lazy(
                "{} {}", _('A list of value tier codes, e.g. ["super_vip", "core"]. The tiers:'), ", ".join(Tier.values)
            ),
            "rfm_groups": _('A list of RFM group codes, e.g. ["high_value"].'),
        }


@admin.register(VipRule)
class VipRuleAdmin(_RuleAdmin):
    form = VipRuleForm
    list_display = ["name", "tiers", "rfm_groups", "raise_by", "max_priority", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name"]


class CannedReplyForm(RuleForm):
    class Meta:
        help_texts = {
            "body": _(
                "Django template syntax; filled in: {{ customer_name }}, {{ ticket_id }}, {{ subject }}, "
                "{{ operator_name }}."
            )
        }


@admin.register(CannedReply)
class CannedReplyAdmin(_RuleAdmin):
    form = CannedReplyForm
    list_display = ["name", "category", "is_active"]
    list_filter = ["category", "is_active"]
    search_fields = ["name"]


# --- tickets -------------------------------------------------------------------------

UPDATE_FIELDS = ["category", "priority", "impact", "severity", "difficulty"]
ASSIGN_FIELDS = ["team", "assignee"]


class _Rollback(Exception):
    """Ends a dry run: raised inside its savepoint so everything in it is rolled back."""


def _dry_run(call) -> ApplicationError | None:
    """Runs ``call`` in a savepoint that is always rolled back; returns its refusal, if any."""
    try:
        with transaction.atomic():
            call()
            raise _Rollback
    except _Rollback:
        return None
    except ApplicationError as exc:
        return exc


def ticket_changes_apply(*, ticket_id: int, data: dict, changed, actor) -> Ticket:
    """The admin form's edit as the services' calls: ``ticket_update`` for what it
    changed among category, priority and its inputs, then ``ticket_assign`` for team
    and person."""
    ticket = Ticket.objects.select_related("team", "assignee").get(pk=ticket_id)
    update = {name: data[name] for name in UPDATE_FIELDS if name in changed}
    if update:
        ticket = ticket_services.ticket_update(ticket=ticket, actor=actor, **update)
    if any(name in changed for name in ASSIGN_FIELDS):
        ticket = ticket_services.ticket_assign(
            ticket=ticket, team=data.get("team"), assignee=data.get("assignee"), actor=actor
        )
    return ticket


def _refusal_field(exc: ApplicationError) -> str | None:
    details = exc.details if isinstance(exc.details, dict) else {}
    for name in [*UPDATE_FIELDS, "assignee", "team"]:
        if name in details:
            return name
    return None


class TicketAdminForm(forms.ModelForm):
    #: the operator making the edit (set per request by ``TicketAdmin.get_form``)
    actor = None

    class Meta:
        model = Ticket
        fields = [*UPDATE_FIELDS, *ASSIGN_FIELDS]

    def clean(self):
        cleaned = super().clean()
        changed = [name for name in self.changed_data if name in UPDATE_FIELDS + ASSIGN_FIELDS]
        if self._errors or self.instance.pk is None or not changed:
            return cleaned
        refusal = _dry_run(
            lambda: ticket_changes_apply(ticket_id=self.instance.pk, data=cleaned, changed=changed, actor=self.actor)
        )
        if refusal is not None:
            field = _refusal_field(refusal)
            self.add_error(field if field in self.fields else None, refusal.message)
        return cleaned


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class SlaTargetInline(_ReadOnlyInline):
    model = SlaTarget
    fields = ["kind", "state", "target_seconds", "business_hours", "due_at", "warned_at", "breached_at", "stopped_at"]
    readonly_fields = fields


class MessageInline(_ReadOnlyInline):
    model = Message
    fields = ["created_at", "kind", "author", "body"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author")


class EscalationInline(_ReadOnlyInline):
    model = Escalation
    fields = ["at", "target", "level", _priority_change, "acknowledged_at"]
    readonly_fields = fields


class TicketEventInline(_ReadOnlyInline):
    model = TicketEvent
    fields = ["at", "actor_label", "action", "changes"]
    readonly_fields = fields


class AttachmentInline(_ReadOnlyInline):
    model = Attachment
    fields = ["name", "content_type", "size", "created_at"]
    readonly_fields = fields


@admin.register(Ticket)
class TicketAdmin(ScaledListMixin, ImportExportModelAdmin):
    form = TicketAdminForm
    resource_classes = [TicketResource]
    formats = import_formats = export_formats = exports.FORMATS  # no cell exported as a live formula
    skip_admin_log = True  # each ticket_open writes the ticket's own history
    list_display = ["id", "subject", "status", "priority", "category", "team", "assignee", "customer", "created_at"]
    list_display_links = ["id", "subject"]
    list_filter = ["status", "priority", "category", "team"]
    list_select_related = ["team", "assignee", "customer"]
    search_fields = ["subject"]  # see get_search_results
    search_help_text = _("A ticket number, or words of its subject.")
    readonly_fields = [
        "subject",
        "body",
        "customer",
        "source",
        "status",
        "priority_basis_shown",
        "sla_shown",
        "merged_into",
        "theme",
        "created_at",
        "updated_at",
        "first_responded_at",
        "resolved_at",
        "closed_at",
    ]
    fieldsets = [
        (None, {"fields": ["subject", "body", "customer", "source", "status", "merged_into", "theme"]}),
        (
            _("Category and priority"),
            {"fields": ["category", "impact", "severity", "difficulty", "priority", "priority_basis_shown"]},
        ),
        (_("Assignment"), {"fields": ["team", "assignee"]}),
        (
            _("SLA"),
            {"fields": ["sla_shown", "created_at", "first_responded_at", "resolved_at", "closed_at", "updated_at"]},
        ),
    ]
    inlines = [SlaTargetInline, EscalationInline, MessageInline, AttachmentInline, TicketEventInline]

    def get_queryset(self, request):
        # The queues the operator may see (feedback.selectors.tickets), as on the queue page.
        queryset = tickets_visible(viewer=request.user)
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(subject__icontains=term)
        number = _ticket_number(term)
        if number is not None:
            match |= Q(pk=number)
        return queryset.filter(match), False

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "assignee":
            kwargs["queryset"] = db_field.related_model._default_manager.filter(is_active=True).order_by("username")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description=_("how the priority was reached"))
    def priority_basis_shown(self, obj: Ticket) -> str:
        return _pretty_json(obj.priority_basis)

    @admin.display(description=_("SLA targets"))
    def sla_shown(self, obj: Ticket) -> str:
        kinds, states = dict(SlaTarget.Kind.choices), dict(SlaTarget.State.choices)
        rows = sla_selectors.sla_state(ticket=obj, now=timezone.now())
        return format_html_join(
            "",
            "<div>{}: {} · {} {}</div>",
            (
                (
                    kinds.get(r["target"], r["target"]),
                    states.get(r["state"], r["state"]),
                    _("due at"),
                    date_format(timezone.localtime(r["due_at"]), "DATETIME_FORMAT") if r["due_at"] else "—",
                )
                for r in rows
            ),
        )

    # Tickets come from the API, the operator pages and the import; they are history.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_import_permission(self, request):
        return request.user.has_perm("feedback.add_ticket")

    def has_export_permission(self, request):
        return self.has_view_permission(request)

    def get_import_resource_kwargs(self, request, *args, **kwargs):
        # Each row's ticket_open writes the ticket's history under the importing operator.
        return {**super().get_import_resource_kwargs(request, *args, **kwargs), "actor": request.user}

    def get_import_data_kwargs(self, **kwargs):
        kwargs = super().get_import_data_kwargs(**kwargs)
        # One bad row rolls the whole file back, on the confirm step too (the file may have changed).
        kwargs["use_transactions"] = True
        kwargs["rollback_on_validation_errors"] = True
        return kwargs

    def process_result(self, result, request):
        if result.has_errors() or result.has_validation_errors():
            messages.error(request, _("The file has invalid rows; nothing was imported. Check it and import again."))
            return HttpResponseRedirect(reverse("admin:feedback_ticket_import"))
        return super().process_result(result, request)

    def save_model(self, request, obj, form, change):
        changed = [name for name in form.changed_data if name in UPDATE_FIELDS + ASSIGN_FIELDS]
        if not changed:
            return
        stored = ticket_changes_apply(ticket_id=obj.pk, data=form.cleaned_data, changed=changed, actor=request.user)
        # The admin goes on to redirect with ``obj``: make it the row the services wrote.
        for field in Ticket._meta.concrete_fields:
            setattr(obj, field.attname, getattr(stored, field.attname))

    def save_related(self, request, form, formsets, change):
        # The inlines are read-only and a ticket has no many-to-many fields: nothing to write.
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []


# --- records (read-only) -------------------------------------------------------------


class _TicketRecordAdmin(ReadOnlyAdmin):
    """Rows of one ticket's history, listed across tickets: for those who see every queue
    (the others read them on the tickets they may see). Search by ticket number."""

    ordering = ["-pk"]  # the primary key's index: no sort of the whole table
    search_fields = ["ticket__id"]
    search_help_text = _("A ticket number.")

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and ticket_visible_q(request.user) is None

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        number = _ticket_number(search_term)
        return (queryset.filter(ticket_id=number) if number is not None else queryset.none()), False


@admin.register(SlaTarget)
class SlaTargetAdmin(_TicketRecordAdmin):
    list_display = [_ticket_column, "kind", "state", "target_seconds", "due_at", "warned_at", "breached_at"]
    list_filter = ["kind", "state", "business_hours"]
    fields = readonly_fields = [
        _ticket_column,
        "kind",
        "state",
        "target_seconds",
        "business_hours",
        "started_at",
        "consumed_seconds",
        "paused_seconds",
        "due_at",
        "stopped_at",
        "warned_at",
        "breached_at",
    ]


@admin.register(Escalation)
class EscalationAdmin(_TicketRecordAdmin):
    list_display = [_ticket_column, "target", "level", "at", _priority_change, _team_column, "acknowledged_at"]
    list_filter = ["level", "target", ("team", _titled_filter(_("team")))]
    list_select_related = ["team"]
    fields = readonly_fields = [
        _ticket_column,
        "target",
        "level",
        "at",
        _priority_change,
        _team_column,
        "acknowledged_at",
    ]


@admin.register(Message)
class MessageAdmin(_TicketRecordAdmin):
    list_display = [_ticket_column, "kind", "author", "created_at"]
    list_filter = ["kind"]
    list_select_related = ["author"]
    fields = readonly_fields = [_ticket_column, "kind", "author", "body", "created_at"]


@admin.register(Attachment)
class AttachmentAdmin(_TicketRecordAdmin):
    list_display = [_ticket_column, "name", "content_type", "size", "created_at"]
    fields = readonly_fields = [_ticket_column, "name", "content_type", "size", "file", "created_at"]


@admin.register(TicketEvent)
class TicketEventAdmin(_TicketRecordAdmin):
    list_display = [_ticket_column, "at", "actor_label", "action"]
    list_filter = ["action"]
    fields = readonly_fields = [_ticket_column, "at", "actor_label", "action", "changes"]


@admin.register(CsatResponse)
class CsatResponseAdmin(_TicketRecordAdmin):
    list_display = [_ticket_column, "score", _team_column, "answered_at"]
    list_filter = ["score", ("team", _titled_filter(_("team")))]
    list_select_related = ["team"]
    fields = readonly_fields = [_ticket_column, "score", "comment", _team_column, "answered_at"]


@admin.register(NpsSurvey)
class NpsSurveyAdmin(ReadOnlyAdmin):
    list_display = ["name", "segment_slug", "sent_count", "sent_at", "created_at"]
    search_fields = ["name"]
    fields = readonly_fields = ["name", "segment_slug", "question", "created_at", "sent_at", "sent_count"]


@admin.display(description=_("NPS survey"))
def _survey_column(obj: NpsResponse) -> str:
    return str(obj.survey)


@admin.display(description=_("customer"))
def _customer_column(obj: NpsResponse) -> str:
    return obj.customer.external_id


@admin.register(NpsResponse)
class NpsResponseAdmin(ReadOnlyAdmin):
    list_display = [_survey_column, _customer_column, "score", "answered_at"]
    list_filter = ["score", ("survey", _titled_filter(_("NPS survey")))]
    list_select_related = ["survey", "customer"]
    search_fields = ["=customer__external_id"]
    ordering = ["-pk"]
    fields = readonly_fields = [_survey_column, _customer_column, "score", "comment", "answered_at"]


@admin.register(Theme)
class ThemeAdmin(ReadOnlyAdmin):
    """Themes are confirmed, renamed and handed to the roadmap on their own pages."""

    list_display = ["name", "status", "updated_at"]
    list_filter = ["status"]
    search_fields = ["name"]


@admin.display(description=_("theme"))
def _theme_column(obj: RoadmapItem) -> str:
    return str(obj.theme)


@admin.register(RoadmapItem)
class RoadmapItemAdmin(ReadOnlyAdmin):
    list_display = ["title", _theme_column, "status", "updated_at"]
    list_filter = ["status"]
    list_select_related = ["theme"]
    search_fields = ["title"]
    fields = readonly_fields = ["title", _theme_column, "status", "created_at", "updated_at"]

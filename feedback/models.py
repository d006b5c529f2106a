"""The feedback ticket queue: tickets, their conversation and history, the SLA clock's
rows, the rules admins edit (priority matrix, VIP rule, SLA policies, teams and their
business calendars), CSAT/NPS answers and themes.

Nothing here runs a workflow: transitions live in ``feedback.workflow`` (one table),
writes in ``feedback.services``, the clock's arithmetic in ``feedback.sla``."""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from users.models import Customer

from .sla import working_time_errors


class Status(models.TextChoices):
    NEW = "new", _("new")
    TRIAGED = "triaged", _("triaged")
    IN_PROGRESS = "in_progress", _("in progress")
    WAITING = "waiting_on_customer", _("waiting on customer")
    RESOLVED = "resolved", _("resolved")
    CLOSED = "closed", _("closed")


#: statuses in which a ticket is still someone's work (the queue's "open")
OPEN_STATUSES = [Status.NEW, Status.TRIAGED, Status.IN_PROGRESS, Status.WAITING]


class Category(models.TextChoices):
    SUGGESTION = "suggestion", _("feature suggestion")
    COMPLAINT = "complaint", _("complaint / bug")
    EMOTIONAL = "emotional", _("emotional appeal")
    QUESTION = "question", _("question")


class Priority(models.TextChoices):
    LOW = "low", pgettext_lazy("priority", "low")
    NORMAL = "normal", pgettext_lazy("priority", "normal")
    HIGH = "high", pgettext_lazy("priority", "high")
    URGENT = "urgent", pgettext_lazy("priority", "urgent")
    CRISIS = "crisis", pgettext_lazy("priority", "crisis")


#: lowest first; "raise by one" moves one step right, never past crisis
PRIORITY_ORDER = [Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT, Priority.CRISIS]


class Source(models.TextChoices):
    APP = "app", _("app")
    SERVICE = "service", _("customer service")
    SOCIAL = "social", _("social media")
    COMMUNITY = "community", _("community keyword alert")
    API = "api", _("REST API")
    IMPORT = "import", _("import")


class Impact(models.TextChoices):
    ONE = "one", _("one customer")
    MANY = "many", _("many customers")
    ALL = "all", _("all customers")


class Severity(models.TextChoices):
    MINOR = "minor", _("minor")
    MAJOR = "major", _("major")
    CRITICAL = "critical", _("critical")


class Difficulty(models.TextChoices):
    EASY = "easy", _("easy to resolve")
    HARD = "hard", _("hard to resolve")


class TeamCode(models.TextChoices):
    PRODUCT = "product", _("product")
    TECH = "tech", _("tech")
    OPERATIONS = "operations", _("operations")


# --- rules admins edit ---------------------------------------------------------------


class BusinessCalendar(models.Model):
    """Working time: weekly hours in a timezone, mainland China's public holidays and
    make-up working days (调休) from the ``chinese_calendar`` library when
    ``china_holidays`` is set, and the dates an admin adds (``CalendarDate``), which win.

    ``weekly_hours`` maps ISO weekday numbers ("1" Monday … "7" Sunday) to a list of
    ``["HH:MM", "HH:MM"]`` spans; a make-up Saturday works the hours of ``workday_hours``
    (Monday's when empty)."""

    name = models.CharField(_("name"), max_length=80, unique=True)
    timezone = models.CharField(_("timezone"), max_length=64, default="Asia/Shanghai")
    weekly_hours = models.JSONField(_("weekly hours"), default=dict, blank=True)
    workday_hours = models.JSONField(_("make-up working day hours"), default=list, blank=True)
    china_holidays = models.BooleanField(_("mainland China holidays and make-up days"), default=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("business calendar")
        verbose_name_plural = _("business calendars")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # The admin's form refuses what the clock could not use (no working time,
        # malformed or overlapping spans); services check the same through feedback.sla.
        errors = working_time_errors(self.weekly_hours, workday_hours=self.workday_hours, timezone=self.timezone)
        if errors:
            raise ValidationError({"weekly_hours": errors})


class CalendarDate(models.Model):
    class Kind(models.TextChoices):
        HOLIDAY = "holiday", _("day off")
        WORKDAY = "workday", _("working day")

    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="dates")
    date = models.DateField(_("date"))
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=80, blank=True)

    class Meta:
        verbose_name = _("calendar date")
        verbose_name_plural = _("calendar dates")
        constraints = [models.UniqueConstraint(fields=["calendar", "date"], name="feedback_calendar_date_unique")]
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date} {self.get_kind_display()}"


class Team(models.Model):
    code = models.CharField(_("code"), max_length=20, choices=TeamCode.choices, unique=True)
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("team lead"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("members"), blank=True, related_name="feedback_teams"
    )
    calendar = models.ForeignKey(
        BusinessCalendar, verbose_name=_("business calendar"), null=True, blank=True, on_delete=models.PROTECT
    )

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["code"]
        permissions = [("view_all_queues", _("See every team's queue"))]

    def __str__(self) -> str:
        return self.get_code_display()


class SlaPolicy(models.Model):
    """Both targets of one priority. A null target means the priority has none.
    ``business_hours`` off means the clock runs around the clock."""

    priority = models.CharField(_("priority"), max_length=10, choices=Priority.choices, unique=True)
    first_response_minutes = models.PositiveIntegerField(_("first response within (minutes)"), null=True, blank=True)
    resolution_minutes = models.PositiveIntegerField(_("resolution within (minutes)"), null=True, blank=True)
    business_hours = models.BooleanField(_("count business hours only"), default=True)
    warn_share = models.DecimalField(
        _("warn at share of target"),
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.80"),
        help_text=_("0.80 warns at 80%"),
    )

    class Meta:
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")

    def __str__(self) -> str:
        return self.get_priority_display()


class PriorityRule(models.Model):
    """One cell of the priority matrix: impact scope × severity against difficulty."""

    impact = models.CharField(_("impact scope"), max_length=10, choices=Impact.choices)
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices)
    difficulty = models.CharField(_("resolution difficulty"), max_length=10, choices=Difficulty.choices)
    priority = models.CharField(_("priority"), max_length=10, choices=Priority.choices)

    class Meta:
        verbose_name = _("priority matrix cell")
        verbose_name_plural = _("priority matrix")
        constraints = [
            models.UniqueConstraint(fields=["impact", "severity", "difficulty"], name="feedback_priority_cell_unique")
        ]
        ordering = ["impact", "severity", "difficulty"]

    def __str__(self) -> str:
        return f"{self.impact}/{self.severity}/{self.difficulty} → {self.priority}"


class VipRule(models.Model):
    """Tickets from customers in one of ``tiers`` or ``rfm_groups`` (from segments) are
    raised ``raise_by`` steps, to at most ``max_priority``."""

    name = models.CharField(_("name"), max_length=80)
    tiers = models.JSONField(_("value tiers"), default=list, blank=True)
    rfm_groups = models.JSONField(_("RFM groups"), default=list, blank=True)
    raise_by = models.PositiveSmallIntegerField(_("raise by (steps)"), default=1)
    max_priority = models.CharField(_("at most"), max_length=10, choices=Priority.choices, default=Priority.URGENT)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("VIP rule")
        verbose_name_plural = _("VIP rules")

    def __str__(self) -> str:
        return self.name


class CannedReply(models.Model):
    """A reply template; ``{{ customer_name }}``, ``{{ ticket_id }}``, ``{{ subject }}``
    and ``{{ operator_name }}`` are filled in (Django template syntax, autoescape off:
    the result is plain text)."""

    name = models.CharField(_("name"), max_length=80, unique=True)
    body = models.TextField(_("body"))
    category = models.CharField(_("category"), max_length=12, choices=Category.choices, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("canned reply")
        verbose_name_plural = _("canned replies")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# --- tickets -----------------------------------------------------------------------


class Ticket(models.Model):
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), null=True, blank=True, on_delete=models.PROTECT, related_name="tickets"
    )
    source = models.CharField(_("source"), max_length=12, choices=Source.choices, default=Source.APP)
    category = models.CharField(_("category"), max_length=12, choices=Category.choices)
    subject = models.CharField(_("subject"), max_length=200)
    body = models.TextField(_("body"))
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.NEW)
    priority = models.CharField(_("priority"), max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    impact = models.CharField(_("impact scope"), max_length=10, choices=Impact.choices, default=Impact.ONE)
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices, default=Severity.MINOR)
    difficulty = models.CharField(
        _("resolution difficulty"), max_length=10, choices=Difficulty.choices, default=Difficulty.EASY
    )
    #: how the priority was reached: {"given"|"matrix": ..., "vip": ..., "escalations": [...]}
    priority_basis = models.JSONField(_("how the priority was reached"), default=dict, blank=True)
    team = models.ForeignKey(
        Team, verbose_name=_("team"), null=True, blank=True, on_delete=models.PROTECT, related_name="tickets"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assignee"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tickets",
    )
    merged_into = models.ForeignKey(
        "self", verbose_name=_("merged into"), null=True, blank=True, on_delete=models.PROTECT, related_name="merged"
    )
    theme = models.ForeignKey(
        "Theme", verbose_name=_("theme"), null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    idempotency_key = models.CharField(max_length=100, null=True, blank=True, unique=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)
    first_responded_at = models.DateTimeField(_("first response at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "team", "-created_at"], name="feedback_ticket_queue"),
            models.Index(fields=["assignee", "status"], name="feedback_ticket_assignee"),
            models.Index(fields=["customer", "-created_at"], name="feedback_ticket_customer"),
            models.Index(fields=["created_at"], name="feedback_ticket_created"),
        ]
        permissions = [("reply_ticket", _("Reply to customers on tickets"))]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"


class SlaTarget(models.Model):
    """One target of one ticket's SLA (first response or resolution), tracked apart from
    the other. The clock is ``consumed_seconds`` of counted time plus, while
    ``running_since`` is set, the counted time since then; ``due_at`` and ``warn_at`` are
    the instants the clock reaches the target and the warning share, set while it runs
    and cleared while it is paused or stopped. The escalation sweep finds work with one
    query on ``warn_at``/``due_at``; ``warned_at``/``breached_at`` are each set once."""

    class Kind(models.TextChoices):
        FIRST_RESPONSE = "first_response", _("first response")
        RESOLUTION = "resolution", _("resolution")

    class State(models.TextChoices):
        RUNNING = "running", _("running")
        PAUSED = "paused", _("paused")
        MET = "met", _("met")
        BREACHED = "breached", _("breached")

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="sla_targets")
    kind = models.CharField(_("target"), max_length=16, choices=Kind.choices)
    target_seconds = models.PositiveIntegerField(_("target (seconds)"))
    business_hours = models.BooleanField(_("business hours only"), default=True)
    calendar = models.ForeignKey(BusinessCalendar, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    warn_share = models.DecimalField(max_digits=3, decimal_places=2, default=Decimal("0.80"))
    started_at = models.DateTimeField(_("started at"))
    consumed_seconds = models.PositiveIntegerField(_("counted seconds before the current run"), default=0)
    running_since = models.DateTimeField(null=True, blank=True)
    paused_seconds = models.PositiveIntegerField(_("paused (seconds)"), default=0)
    paused_since = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(_("due at"), null=True, blank=True)
    warn_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(_("stopped at"), null=True, blank=True)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.RUNNING)
    warned_at = models.DateTimeField(_("warned at"), null=True, blank=True)
    breached_at = models.DateTimeField(_("breached at"), null=True, blank=True)

    class Meta:
        verbose_name = _("SLA target")
        verbose_name_plural = _("SLA targets")
        constraints = [models.UniqueConstraint(fields=["ticket", "kind"], name="feedback_sla_target_unique")]
        indexes = [
            models.Index(fields=["due_at"], name="feedback_sla_due", condition=Q(breached_at__isnull=True)),
            models.Index(fields=["warn_at"], name="feedback_sla_warn", condition=Q(warned_at__isnull=True)),
            # The queue: running targets by due time (its order), breached ones (its SLA filter).
            models.Index(fields=["due_at"], name="feedback_sla_running_due", condition=Q(state="running")),
            models.Index(fields=["ticket"], name="feedback_sla_breached", condition=Q(breached_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"#{self.ticket_id} {self.kind}"


class Escalation(models.Model):
    """A warning or a breach of one target, written once (the constraint says so)."""

    class Level(models.TextChoices):
        WARNING = "warning", _("warning")
        BREACH = "breach", _("breach")

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="escalations")
    target = models.CharField(_("target"), max_length=16, choices=SlaTarget.Kind.choices)
    level = models.CharField(_("level"), max_length=10, choices=Level.choices)
    at = models.DateTimeField(_("at"), default=timezone.now, db_index=True)
    priority_from = models.CharField(max_length=10, choices=Priority.choices, blank=True)
    priority_to = models.CharField(max_length=10, choices=Priority.choices, blank=True)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)

    class Meta:
        verbose_name = _("escalation")
        verbose_name_plural = _("escalations")
        constraints = [models.UniqueConstraint(fields=["ticket", "target", "level"], name="feedback_escalation_once")]

    def __str__(self) -> str:
        return f"#{self.ticket_id} {self.target} {self.level}"


class Message(models.Model):
    class Kind(models.TextChoices):
        CUSTOMER = "customer", _("customer")
        REPLY = "reply", _("public reply")
        NOTE = "note", _("internal note")

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("author"), null=True, blank=True, on_delete=models.SET_NULL
    )
    body = models.TextField(_("body"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    idempotency_key = models.CharField(max_length=100, null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket", "idempotency_key"],
                name="feedback_message_key_unique",
                condition=Q(idempotency_key__isnull=False),
            )
        ]
        indexes = [models.Index(fields=["ticket", "created_at"], name="feedback_message_ticket")]

    def __str__(self) -> str:
        return f"#{self.ticket_id} {self.kind}"


class Attachment(models.Model):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="attachments")
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(_("file"), upload_to="feedback/%Y/%m/")
    name = models.CharField(_("name"), max_length=200)
    content_type = models.CharField(_("type"), max_length=100)
    size = models.PositiveIntegerField(_("size (bytes)"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")

    def __str__(self) -> str:
        return self.name


class TicketEvent(models.Model):
    """The ticket's history: who did what, from what to what ({field: [from, to]})."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(_("at"), default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("by"), null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_label = models.CharField(_("by"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=40)
    changes = models.JSONField(_("changes"), default=dict, blank=True)

    class Meta:
        verbose_name = _("ticket history entry")
        verbose_name_plural = _("ticket history")
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["ticket", "at"], name="feedback_event_ticket")]

    def __str__(self) -> str:
        return f"#{self.ticket_id} {self.action}"


# --- satisfaction ------------------------------------------------------------------


class CsatResponse(models.Model):
    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="csat")
    score = models.PositiveSmallIntegerField(_("score (1–5)"))
    comment = models.TextField(_("comment"), blank=True)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    answered_at = models.DateTimeField(_("answered at"), default=timezone.now)

    class Meta:
        verbose_name = _("CSAT answer")
        verbose_name_plural = _("CSAT answers")
        constraints = [models.CheckConstraint(condition=Q(score__gte=1, score__lte=5), name="feedback_csat_1_5")]

    def __str__(self) -> str:
        return f"#{self.ticket_id}: {self.score}"


class NpsSurvey(models.Model):
    name = models.CharField(_("name"), max_length=120)
    segment_slug = models.CharField(_("segment"), max_length=80)
    question = models.CharField(_("question"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    sent_count = models.PositiveIntegerField(_("sent"), default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("NPS survey")
        verbose_name_plural = _("NPS surveys")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class NpsResponse(models.Model):
    survey = models.ForeignKey(NpsSurvey, on_delete=models.CASCADE, related_name="responses")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    score = models.PositiveSmallIntegerField(_("score (0–10)"))
    comment = models.TextField(_("comment"), blank=True)
    answered_at = models.DateTimeField(_("answered at"), default=timezone.now)

    class Meta:
        verbose_name = _("NPS answer")
        verbose_name_plural = _("NPS answers")
        constraints = [
            models.UniqueConstraint(fields=["survey", "customer"], name="feedback_nps_once"),
            models.CheckConstraint(condition=Q(score__lte=10), name="feedback_nps_0_10"),
        ]

    def __str__(self) -> str:
        return f"{self.survey_id}/{self.customer_id}: {self.score}"


# --- themes ------------------------------------------------------------------------


class Theme(models.Model):
    class Status(models.TextChoices):
        SUGGESTED = "suggested", _("suggested")
        CONFIRMED = "confirmed", _("confirmed")
        DISMISSED = "dismissed", _("dismissed")

    name = models.CharField(_("name"), max_length=120)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.SUGGESTED)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        verbose_name = _("theme")
        verbose_name_plural = _("themes")
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.name


class RoadmapItem(models.Model):
    class Status(models.TextChoices):
        PROPOSED = "proposed", _("proposed")
        PLANNED = "planned", _("planned")
        IN_PROGRESS = "in_progress", _("in progress")
        SHIPPED = "shipped", _("shipped")
        DECLINED = "declined", _("declined")

    theme = models.OneToOneField(Theme, on_delete=models.PROTECT, related_name="roadmap_item")
    title = models.CharField(_("title"), max_length=200)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.PROPOSED)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        verbose_name = _("roadmap item")
        verbose_name_plural = _("product roadmap")
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.title

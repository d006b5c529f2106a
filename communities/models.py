"""Community groups run by SOP: groups and their memberships (one row per span: a
member who leaves and rejoins has two), the operators given a group and the rights
they were given, versioned SOP templates with their approval, the content calendar,
what the group bots send (messages, check-ins, activity sign-ups), keyword rules and
the alerts and incidents they raise, risk-member actions, and the daily health table.

Nothing here writes: ``communities.services`` does, with the audit row."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from users.models import Customer


class Platform(models.TextChoices):
    WECHAT = "wechat", _("WeChat group")
    WECOM = "wecom", _("WeCom group")
    QQ = "qq", _("QQ group")
    APP_FORUM = "app_forum", _("app forum")
    DOUYIN = "douyin", _("Douyin fan group")
    OTHER = "other", pgettext_lazy("platform", "other")


class GroupStatus(models.TextChoices):
    PLANNED = "planned", pgettext_lazy("group status", "planned")
    ACTIVE = "active", pgettext_lazy("group status", "active")
    FULL = "full", pgettext_lazy("group status", "full")
    ARCHIVED = "archived", pgettext_lazy("group status", "archived")


class CommunityGroup(models.Model):
    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=120)
    platform = models.CharField(_("platform"), max_length=16, choices=Platform.choices, default=Platform.WECHAT)
    # The group's id on its platform: how a bot names the group it reports from.
    platform_group_id = models.CharField(_("platform group id"), max_length=128, blank=True)
    theme = models.CharField(_("theme"), max_length=120, blank=True)
    tags = models.JSONField(_("tags"), default=list, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.PROTECT,
        related_name="community_groups_owned",
    )
    capacity = models.PositiveIntegerField(_("capacity"), default=500)
    status = models.CharField(_("status"), max_length=16, choices=GroupStatus.choices, default=GroupStatus.ACTIVE)
    description = models.TextField(_("description"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("community group")
        verbose_name_plural = _("community groups")
        ordering = ["name", "id"]
        permissions = [
            ("view_all_groups", _("Can see every community group")),
            ("manage_all_groups", _("Can manage every community group")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "platform_group_id"],
                condition=~Q(platform_group_id=""),
                name="community_group_platform_id_unique",
            )
        ]

    def __str__(self) -> str:
        return self.name


class GroupStaff(models.Model):
    """An operator given a group by its owner or an admin, with the rights given. A
    community manager given a group gets every right; a group admin (a core member
    with an operator account, 分级管理) gets what was ticked. Nobody but those with
    the model permission edits templates or rules: that is not a group right."""

    group = models.ForeignKey(CommunityGroup, verbose_name=_("group"), on_delete=models.CASCADE, related_name="staff")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="community_staff"
    )
    # The member this account is in the group (a core member made group admin), if any.
    membership = models.ForeignKey(
        "Membership", verbose_name=_("membership"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    can_manage = models.BooleanField(_("can manage the group"), default=False)
    can_post = models.BooleanField(_("can post SOP content"), default=True)
    can_handle_risk = models.BooleanField(_("can handle risk members"), default=False)
    can_handle_alerts = models.BooleanField(_("can handle keyword alerts"), default=False)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("granted by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    granted_at = models.DateTimeField(_("granted at"), auto_now_add=True)

    class Meta:
        verbose_name = _("group staff")
        verbose_name_plural = _("group staff")
        constraints = [models.UniqueConstraint(fields=["group", "user"], name="group_staff_unique")]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.group_id}"


class MemberRole(models.TextChoices):
    MEMBER = "member", pgettext_lazy("group role", "member")
    ADMIN = "admin", pgettext_lazy("group role", "group admin")
    KOC = "koc", pgettext_lazy("group role", "KOC")


class Membership(models.Model):
    """One span of a customer in a group: open while ``left_at`` is empty. Leaving
    closes it; rejoining opens a new one."""

    group = models.ForeignKey(
        CommunityGroup, verbose_name=_("group"), on_delete=models.CASCADE, related_name="memberships"
    )
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="community_memberships"
    )
    role = models.CharField(_("role"), max_length=8, choices=MemberRole.choices, default=MemberRole.MEMBER)
    # The member's id on the platform (a WeChat openid/wxid): how a bot names a sender.
    platform_member_id = models.CharField(_("platform member id"), max_length=128, blank=True)
    invited_by = models.ForeignKey(
        Customer,
        verbose_name=_("invited by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="community_invites",
    )
    joined_at = models.DateTimeField(_("joined at"))
    left_at = models.DateTimeField(_("left at"), null=True, blank=True)
    left_reason = models.CharField(_("why they left"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(
                fields=["group", "customer"], condition=Q(left_at__isnull=True), name="membership_one_open_span"
            ),
            models.CheckConstraint(
                condition=Q(left_at__isnull=True) | Q(left_at__gte=models.F("joined_at")),
                name="membership_left_after_joined",
            ),
        ]
        indexes = [
            models.Index(fields=["group", "joined_at"], name="membership_group_joined"),
            models.Index(fields=["group", "left_at"], name="membership_group_left"),
            models.Index(fields=["group", "platform_member_id"], name="membership_group_platform_id"),
            models.Index(fields=["customer", "left_at"], name="membership_customer_open"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}@{self.group_id}"


# --- SOP templates ---------------------------------------------------------------


class TemplateKind(models.TextChoices):
    WELCOME = "welcome", _("welcome message")
    FAQ = "faq", _("FAQ reply")
    ACTIVITY = "activity", _("activity announcement")
    DAILY_TOPIC = "daily_topic", _("daily topic")
    CRISIS = "crisis", _("crisis statement")
    BIRTHDAY = "birthday", _("birthday greeting")
    TICKET_REPLY = "ticket_reply", _("ticket reply")
    CAMPAIGN = "campaign", _("campaign message")
    OTHER = "other", pgettext_lazy("template kind", "other")


class SopTemplate(models.Model):
    """A template's identity; its text lives in versions. What is used is the latest
    approved version (``approved_version``)."""

    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("type"), max_length=16, choices=TemplateKind.choices)
    language = models.CharField(_("language"), max_length=8, default="zh-hans")
    is_active = models.BooleanField(_("active"), default=True)
    approved_version = models.ForeignKey(
        "SopTemplateVersion",
        verbose_name=_("version in use"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("SOP template")
        verbose_name_plural = _("SOP templates")
        ordering = ["kind", "name"]
        permissions = [("approve_soptemplate", _("Can approve SOP template versions"))]

    def __str__(self) -> str:
        return self.name


class VersionStatus(models.TextChoices):
    PENDING = "pending", _("waiting for approval")
    APPROVED = "approved", pgettext_lazy("template version", "approved")
    REJECTED = "rejected", pgettext_lazy("template version", "rejected")
    SUPERSEDED = "superseded", pgettext_lazy("template version", "superseded")


class SopTemplateVersion(models.Model):
    """One written version. ``variables`` are the names the body may use from the
    context the system fills (``{{nickname}}``); ``fields`` are what the operator fills
    in when using it, each ``{"name", "label", "type", "required"}``. Both are checked
    against the body when the version is saved (``communities.templating``)."""

    template = models.ForeignKey(
        SopTemplate, verbose_name=_("template"), on_delete=models.CASCADE, related_name="versions"
    )
    number = models.PositiveIntegerField(_("version"))
    body = models.TextField(_("body"))
    variables = models.JSONField(_("variables"), default=list, blank=True)
    fields = models.JSONField(_("fields to fill in"), default=list, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=VersionStatus.choices, default=VersionStatus.PENDING)
    written_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("written by"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    written_at = models.DateTimeField(_("written at"), auto_now_add=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("reviewed by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True)
    review_note = models.CharField(_("review note"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("SOP template version")
        verbose_name_plural = _("SOP template versions")
        ordering = ["template", "-number"]
        constraints = [models.UniqueConstraint(fields=["template", "number"], name="sop_version_number_unique")]

    def __str__(self) -> str:
        return f"{self.template_id} v{self.number}"


# --- content calendar ------------------------------------------------------------


class ContentClass(models.TextChoices):
    """The 7-2-1 mix: 70% everyday value, 20% surprise, 10% advanced."""

    VALUE = "value", _("everyday value")
    SURPRISE = "surprise", _("surprise")
    ADVANCED = "advanced", _("advanced")


class PostStatus(models.TextChoices):
    PLANNED = "planned", pgettext_lazy("post status", "planned")
    DONE = "done", pgettext_lazy("post status", "done")
    SKIPPED = "skipped", pgettext_lazy("post status", "skipped")


class ContentPost(models.Model):
    group = models.ForeignKey(CommunityGroup, verbose_name=_("group"), on_delete=models.CASCADE, related_name="posts")
    due_on = models.DateField(_("due on"))
    due_time = models.TimeField(_("time"), null=True, blank=True)
    kind = models.CharField(_("type"), max_length=16, choices=TemplateKind.choices)
    content_class = models.CharField(_("content class"), max_length=12, choices=ContentClass.choices)
    title = models.CharField(_("title"), max_length=200)
    template = models.ForeignKey(
        SopTemplate, verbose_name=_("template"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(_("status"), max_length=8, choices=PostStatus.choices, default=PostStatus.PLANNED)
    planned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("planned by"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("done by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    # What was posted (the rendered template), kept as it was.
    posted_text = models.TextField(_("posted text"), blank=True)

    class Meta:
        verbose_name = _("content post")
        verbose_name_plural = _("content calendar")
        ordering = ["due_on", "due_time", "id"]
        indexes = [models.Index(fields=["group", "due_on"], name="post_group_due")]

    # --- what the bots send ----------------------------------------------------------

    def __str__(self) -> str:
        return self.title


class GroupMessage(models.Model):
    group = models.ForeignKey(CommunityGroup, verbose_name=_("group"), on_delete=models.CASCADE, related_name="+")
    external_id = models.CharField(_("external id"), max_length=128)
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    sent_at = models.DateTimeField(_("sent at"))
    text = models.TextField(_("text"), blank=True)
    ingested_at = models.DateTimeField(_("ingested at"), auto_now_add=True)

    class Meta:
        verbose_name = _("group message")
        verbose_name_plural = _("group messages")
        constraints = [models.UniqueConstraint(fields=["group", "external_id"], name="group_message_external_unique")]
        indexes = [models.Index(fields=["group", "sent_at"], name="group_message_sent")]

    def __str__(self) -> str:
        return f"{self.group_id}:{self.external_id}"


class CheckIn(models.Model):
    group = models.ForeignKey(CommunityGroup, verbose_name=_("group"), on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="+")
    day = models.DateField(_("day"))
    at = models.DateTimeField(_("checked in at"))
    external_id = models.CharField(_("external id"), max_length=128, blank=True)

    class Meta:
        verbose_name = _("check-in")
        verbose_name_plural = _("check-ins")
        constraints = [models.UniqueConstraint(fields=["group", "customer", "day"], name="checkin_once_a_day")]
        indexes = [models.Index(fields=["group", "day"], name="checkin_group_day")]

    def __str__(self) -> str:
        return f"{self.customer_id}@{self.group_id} {self.day}"


class Activity(models.Model):
    group = models.ForeignKey(
        CommunityGroup, verbose_name=_("group"), on_delete=models.CASCADE, related_name="activities"
    )
    code = models.SlugField(_("code"), max_length=64)
    title = models.CharField(_("title"), max_length=200)
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"), null=True, blank=True)

    class Meta:
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        constraints = [models.UniqueConstraint(fields=["group", "code"], name="activity_code_unique")]

    def __str__(self) -> str:
        return self.title


class ActivitySignup(models.Model):
    activity = models.ForeignKey(Activity, verbose_name=_("activity"), on_delete=models.CASCADE, related_name="signups")
    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField(_("signed up at"))

    class Meta:
        verbose_name = _("activity sign-up")
        verbose_name_plural = _("activity sign-ups")
        constraints = [models.UniqueConstraint(fields=["activity", "customer"], name="activity_signup_once")]

    # --- keyword alerts ---------------------------------------------------------------

    def __str__(self) -> str:
        return f"{self.customer_id}@{self.activity_id}"


class Severity(models.IntegerChoices):
    INFO = 1, pgettext_lazy("alert severity", "info")
    LOW = 2, pgettext_lazy("alert severity", "low")
    MEDIUM = 3, pgettext_lazy("alert severity", "medium")
    HIGH = 4, pgettext_lazy("alert severity", "high")
    CRITICAL = 5, pgettext_lazy("alert severity", "critical")


class RuleKind(models.TextChoices):
    KEYWORD = "keyword", _("keyword")
    PATTERN = "pattern", _("pattern (RE2)")


class KeywordRule(models.Model):
    """A watched word or an RE2 pattern, matched against normalised text
    (``communities.keywords``). The counts are kept by the alert services."""

    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=8, choices=RuleKind.choices, default=RuleKind.KEYWORD)
    pattern = models.CharField(_("keyword or pattern"), max_length=500)
    severity = models.PositiveSmallIntegerField(_("severity"), choices=Severity.choices, default=Severity.MEDIUM)
    is_active = models.BooleanField(_("active"), default=True)
    hit_count = models.PositiveIntegerField(_("hits"), default=0)
    dismissed_count = models.PositiveIntegerField(_("dismissed"), default=0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("keyword rule")
        verbose_name_plural = _("keyword rules")
        ordering = ["-severity", "name"]

    def __str__(self) -> str:
        return self.name


class CommunitySettings(models.Model):
    """The admin-set thresholds (one row, ``communities.selectors.settings.settings_get``)."""

    ticket_severity = models.PositiveSmallIntegerField(
        _("open a crisis ticket from severity"), choices=Severity.choices, default=Severity.HIGH
    )
    incident_window_minutes = models.PositiveIntegerField(
        _("hits from one group within this many minutes are one incident"), default=60
    )
    risk_repeat_days = models.PositiveIntegerField(
        _("a repeat within this many days escalates to the next step"), default=30
    )

    class Meta:
        verbose_name = _("community settings")
        verbose_name_plural = _("community settings")

    def __str__(self) -> str:
        return str(self._meta.verbose_name)


class Incident(models.Model):
    """Hits from one group close together: one ticket for all of them."""

    group = models.ForeignKey(CommunityGroup, verbose_name=_("group"), on_delete=models.CASCADE, related_name="+")
    opened_at = models.DateTimeField(_("opened at"))
    last_hit_at = models.DateTimeField(_("last hit at"))
    severity = models.PositiveSmallIntegerField(_("severity"), choices=Severity.choices)
    ticket_id = models.BigIntegerField(_("ticket"), null=True, blank=True)

    class Meta:
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
        indexes = [models.Index(fields=["group", "last_hit_at"], name="incident_group_last")]

    def __str__(self) -> str:
        return f"{self.group_id}@{self.opened_at:%Y-%m-%d %H:%M}"


class AlertStatus(models.TextChoices):
    OPEN = "open", pgettext_lazy("alert status", "open")
    ACKNOWLEDGED = "acknowledged", pgettext_lazy("alert status", "acknowledged")
    DISMISSED = "dismissed", pgettext_lazy("alert status", "dismissed as a false positive")


class Alert(models.Model):
    group = models.ForeignKey(CommunityGroup, verbose_name=_("group"), on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(GroupMessage, verbose_name=_("message"), on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(KeywordRule, verbose_name=_("rule"), on_delete=models.CASCADE, related_name="+")
    severity = models.PositiveSmallIntegerField(_("severity"), choices=Severity.choices)
    matched = models.CharField(_("matched text"), max_length=200)
    raised_at = models.DateTimeField(_("raised at"))
    incident = models.ForeignKey(
        Incident, verbose_name=_("incident"), null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    status = models.CharField(_("status"), max_length=12, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("handled by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    handled_at = models.DateTimeField(_("handled at"), null=True, blank=True)
    dismiss_reason = models.CharField(_("why dismissed"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("keyword alert")
        verbose_name_plural = _("keyword alerts")
        constraints = [models.UniqueConstraint(fields=["message", "rule"], name="alert_once_per_message_rule")]
        indexes = [models.Index(fields=["group", "status", "raised_at"], name="alert_group_status")]

    # --- risk members -----------------------------------------------------------------

    def __str__(self) -> str:
        return f"{self.rule_id}: {self.matched}"


class RiskStep(models.TextChoices):
    """Graded handling, mildest first: a repeat escalates one step."""

    WARN = "warn", pgettext_lazy("risk step", "warn")
    MUTE = "mute", pgettext_lazy("risk step", "mute")
    REMOVE = "remove", pgettext_lazy("risk step", "remove")


RISK_STEPS = [RiskStep.WARN, RiskStep.MUTE, RiskStep.REMOVE]


class RiskReason(models.TextChoices):
    MARKETING = "marketing", _("malicious marketing / spam")
    ABUSE = "abuse", _("abuse / harassment")
    RUMOUR = "rumour", _("rumours / misinformation")
    OTHER = "other", pgettext_lazy("risk reason", "other")


class RiskAction(models.Model):
    group = models.ForeignKey(CommunityGroup, verbose_name=_("group"), on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="community_risk_actions"
    )
    step = models.CharField(_("step"), max_length=8, choices=RiskStep.choices)
    requested_step = models.CharField(_("step asked for"), max_length=8, choices=RiskStep.choices)
    reason = models.CharField(_("reason"), max_length=12, choices=RiskReason.choices)
    note = models.CharField(_("why"), max_length=500)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("by"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(_("at"))
    mute_until = models.DateTimeField(_("muted until"), null=True, blank=True)

    class Meta:
        verbose_name = _("risk member action")
        verbose_name_plural = _("risk member actions")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["customer", "at"], name="risk_customer_at")]

    # --- group health -------------------------------------------------------------------

    def __str__(self) -> str:
        return f"{self.step} {self.customer_id}@{self.group_id}"


class GroupHealthDay(models.Model):
    """One group's day, rolled up from the rows above by ``communities.health``."""

    group = models.ForeignKey(CommunityGroup, verbose_name=_("group"), on_delete=models.CASCADE, related_name="+")
    day = models.DateField(_("day"))
    members = models.PositiveIntegerField(_("members at the end of the day"), default=0)
    messages = models.PositiveIntegerField(_("messages"), default=0)
    active_members = models.PositiveIntegerField(_("active members"), default=0)
    joins = models.PositiveIntegerField(_("joins"), default=0)
    leaves = models.PositiveIntegerField(_("leaves"), default=0)
    leave_rate = models.FloatField(_("leave rate"), default=0)
    checkins = models.PositiveIntegerField(_("check-ins"), default=0)
    checkin_rate = models.FloatField(_("check-in participation"), default=0)
    activity_signups = models.PositiveIntegerField(_("activity sign-ups"), default=0)
    activity_rate = models.FloatField(_("activity participation"), default=0)
    computed_at = models.DateTimeField(_("computed at"), auto_now=True)

    class Meta:
        verbose_name = _("group health day")
        verbose_name_plural = _("group health")
        constraints = [models.UniqueConstraint(fields=["group", "day"], name="group_health_day_unique")]

    def __str__(self) -> str:
        return f"{self.group_id} {self.day}"

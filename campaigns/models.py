"""Campaigns: the contact policy's admin-edited rules, each customer's contact state,
campaigns with their variants, and the deliveries (the outbox and the record of why).

A delivery is written, with its decision, before anything is handed to a channel
(the outbox); its ``key`` makes every planned reach-out unique, so a re-run fan-out or a
replayed API call finds the row it already wrote instead of sending twice.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from communities.models import SopTemplate, SopTemplateVersion
from users.models import Channel, Customer, Order


class Category(models.TextChoices):
    MARKETING = "marketing", _("marketing")
    TRANSACTIONAL = "transactional", _("transactional")


class ContentClass(models.TextChoices):
    """What a message is, for caps counted by class (WeChat's 4-1-1 per week)."""

    NONE = "", _("any")
    REGULAR = "regular", _("regular")
    IN_DEPTH = "in_depth", _("in-depth")
    INTERACTIVE = "interactive", _("interactive")


class OnHold(models.TextChoices):
    DEFER = "defer", _("defer to the earliest allowed time")
    SUPPRESS = "suppress", _("suppress")


class CapRule(models.Model):
    """A frequency cap: rolling windows per customer over marketing sends on a channel
    (blank: every channel) and content class (blank: any). ``windows`` is a list of
    ``{"seconds", "limit"}``; a minimum gap is a window with limit 1 ("3-7": at most
    1 per 3 h and 7 per 24 h)."""

    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=100)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices, blank=True)
    content_class = models.CharField(_("content class"), max_length=16, choices=ContentClass.choices, blank=True)
    windows = models.JSONField(_("windows"), default=list)
    is_active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("frequency cap")
        verbose_name_plural = _("frequency caps")
        ordering = ["channel", "code"]

    def __str__(self) -> str:
        return self.name or self.code


class ContactPolicy(models.Model):
    """The one row of policy knobs besides the caps: quiet hours and back-off."""

    quiet_start = models.TimeField(_("quiet hours start"), default="22:00")
    quiet_end = models.TimeField(_("quiet hours end"), default="08:00")
    backoff_after = models.PositiveSmallIntegerField(
        _("back off after unanswered sends"), default=3, help_text=_("consecutive marketing sends with no response")
    )
    backoff_factor = models.DecimalField(_("back-off factor"), max_digits=3, decimal_places=2, default=0.5)
    ab_min_sample = models.PositiveIntegerField(
        _("A/B minimum sample per variant"), default=200, help_text=_("below it results say 'not enough data yet'")
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("contact policy")
        verbose_name_plural = _("contact policy")

    def __str__(self) -> str:
        return str(_("contact policy"))


class ContactState(models.Model):
    """Per customer: the row every send locks (``SELECT … FOR UPDATE``, in id order), so
    checking the caps and writing the delivery are one step however many workers race;
    and the channels the customer unsubscribed from (so a held send says why).
    Back-off needs no counter here: it is read off the deliveries (the last sends on a
    channel, and whether any was opened, clicked, answered or converted)."""

    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, primary_key=True, related_name="+")
    unsubscribed = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("contact state")
        verbose_name_plural = _("contact states")

    def __str__(self) -> str:
        return f"contact state of customer {self.customer_id}"


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("draft")
    SCHEDULED = "scheduled", _("scheduled")
    RUNNING = "running", _("running")
    PAUSED = "paused", _("paused")
    COMPLETED = "completed", _("completed")
    CANCELLED = "cancelled", _("cancelled")


class ScheduleKind(models.TextChoices):
    ONCE = "once", _("one-off")
    RECURRING = "recurring", _("recurring")
    TRIGGERED = "triggered", _("triggered")


class Trigger(models.TextChoices):
    NONE = "", _("none")
    SIGNUP_DAY = "signup_day", _("days after signup")
    BIRTHDAY = "birthday", _("birthday")
    SEGMENT_ENTER = "segment_enter", _("entering a segment")
    POINTS_EXPIRING = "points_expiring", _("points about to expire")


class Campaign(models.Model):
    name = models.CharField(_("name"), max_length=120)
    status = models.CharField(
        _("status"), max_length=12, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT, db_index=True
    )
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    category = models.CharField(_("category"), max_length=16, choices=Category.choices, default=Category.MARKETING)
    content_class = models.CharField(_("content class"), max_length=16, choices=ContentClass.choices, blank=True)
    # Segment slugs, built-in ("stage-churn_warning", "rfm-champions") or custom: the
    # audience is everyone in any of ``segments`` and in none of ``excluded_segments``.
    segments = models.JSONField(_("audience segments"), default=list, blank=True)
    excluded_segments = models.JSONField(_("excluded segments"), default=list, blank=True)
    schedule = models.CharField(_("schedule"), max_length=12, choices=ScheduleKind.choices, default=ScheduleKind.ONCE)
    start_at = models.DateTimeField(_("send at"), null=True, blank=True)
    cron = models.CharField(
        _("recurrence"), max_length=64, blank=True, help_text=_("minute hour day-of-month month day-of-week")
    )
    schedule_timezone = models.CharField(_("schedule timezone"), max_length=64, default="Asia/Shanghai")
    trigger = models.CharField(_("trigger"), max_length=20, choices=Trigger.choices, blank=True)
    trigger_value = models.CharField(
        _("trigger value"),
        max_length=64,
        blank=True,
        help_text=_("days after signup, a segment's slug, days before expiry"),
    )
    on_hold = models.CharField(
        _("when the policy holds a send"), max_length=10, choices=OnHold.choices, default=OnHold.DEFER
    )
    max_delay_hours = models.PositiveIntegerField(_("maximum delay (hours)"), default=24)
    goal_days = models.PositiveSmallIntegerField(_("conversion window (days)"), default=7)
    cost = models.DecimalField(_("cost"), max_digits=12, decimal_places=2, null=True, blank=True)
    last_occurrence = models.CharField(_("last occurrence"), max_length=32, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class Variant(models.Model):
    """An A/B arm: its share of the audience (the shares add up to 100) and its content."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variants")
    code = models.CharField(_("variant"), max_length=8)
    share = models.PositiveSmallIntegerField(_("share (%)"))
    template = models.ForeignKey(SopTemplate, verbose_name=_("template"), on_delete=models.PROTECT, related_name="+")
    template_version = models.ForeignKey(
        SopTemplateVersion,
        verbose_name=_("template version"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("fixed at launch: the approved version then"),
    )
    subject = models.CharField(_("subject"), max_length=150, blank=True)
    field_values = models.JSONField(_("field values"), default=dict, blank=True)

    class Meta:
        verbose_name = _("variant")
        verbose_name_plural = _("variants")
        ordering = ["campaign", "code"]
        constraints = [models.UniqueConstraint(fields=["campaign", "code"], name="campaigns_variant_code_unique")]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.code}"


class DispatchChunk(models.Model):
    """One chunk (a range of customer ids, or a list of triggered ones) of a campaign
    occurrence: pending until its deliveries are written. The campaign is complete
    when no chunk is pending and nothing is left in its outbox; a paused campaign's
    pending chunks are sent again when it is launched again."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="chunks")
    occurrence = models.CharField(max_length=32)
    due_at = models.DateTimeField()
    lo = models.BigIntegerField()
    hi = models.BigIntegerField()
    customer_ids = models.JSONField(null=True, blank=True, help_text="a triggered chunk's customers")
    written = models.PositiveIntegerField(default=0)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("dispatch chunk")
        verbose_name_plural = _("dispatch chunks")
        constraints = [models.UniqueConstraint(fields=["campaign", "occurrence", "lo"], name="campaigns_chunk_unique")]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.occurrence}/{self.lo}"


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", _("queued")
    DEFERRED = "deferred", _("deferred")
    SUPPRESSED = "suppressed", _("suppressed")
    SENDING = "sending", _("sending")
    SENT = "sent", pgettext_lazy("delivery", "sent")
    DELIVERED = "delivered", _("delivered")
    OPENED = "opened", _("opened")
    CLICKED = "clicked", _("clicked")
    RESPONDED = "responded", _("responded")
    FAILED = "failed", pgettext_lazy("delivery", "failed")


# What the caps count: every marketing delivery that went, or is still to go, out.
COUNTED_STATUSES = [
    DeliveryStatus.QUEUED,
    DeliveryStatus.DEFERRED,
    DeliveryStatus.SENDING,
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.OPENED,
    DeliveryStatus.CLICKED,
    DeliveryStatus.RESPONDED,
]
# A response to a delivery: it ends the customer's back-off on that channel.
RESPONSE_FIELDS = ["opened_at", "clicked_at", "responded_at", "converted_at"]
# Waiting in the outbox for a sender.
PENDING_STATUSES = [DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED]
# The outcome reached: results count these as sent.
HANDED_STATUSES = [
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.OPENED,
    DeliveryStatus.CLICKED,
    DeliveryStatus.RESPONDED,
]


class Delivery(models.Model):
    """One planned reach-out and its outcome. ``key`` is unique: (campaign, customer,
    occurrence, variant) for a campaign, the client's idempotency key for the API.
    ``send_after`` is when it may be handed over; ``planned_at`` what the caps count
    (``send_after`` until it is handed over, then ``sent_at``)."""

    id = models.BigAutoField(primary_key=True)
    key = models.CharField(max_length=160, unique=True)
    # Every index is written again on each status change (a non-HOT update): these
    # foreign keys get none of their own — delivery_campaign_status leads with the
    # campaign; variants, template versions and orders are not looked up from here.
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    variant = models.ForeignKey(
        Variant, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries", db_index=False
    )
    occurrence = models.CharField(_("occurrence"), max_length=32, blank=True)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_index=False)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    category = models.CharField(_("category"), max_length=16, choices=Category.choices)
    content_class = models.CharField(_("content class"), max_length=16, blank=True)
    template_version = models.ForeignKey(
        SopTemplateVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    subject = models.CharField(_("subject"), max_length=150, blank=True)
    content = models.TextField(_("content"), blank=True, help_text=_("given text (the API); else the template renders"))
    status = models.CharField(_("status"), max_length=12, choices=DeliveryStatus.choices)
    reason = models.CharField(_("reason"), max_length=20, blank=True)
    rule = models.CharField(_("deciding rule"), max_length=80, blank=True)
    due_at = models.DateTimeField(_("due at"))
    send_after = models.DateTimeField(_("send after"), null=True, blank=True)
    planned_at = models.DateTimeField(_("counted at"), null=True, blank=True)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    claimed_by = models.CharField(max_length=80, blank=True)
    # Claims by a sender (each one hands the delivery over once); ``recovered`` counts the
    # claims a dead worker left behind that the sweep put back — the only way to a re-send.
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    recovered = models.PositiveSmallIntegerField(_("recovered after a crash"), default=0)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    opened_at = models.DateTimeField(_("opened at"), null=True, blank=True)
    clicked_at = models.DateTimeField(_("clicked at"), null=True, blank=True)
    responded_at = models.DateTimeField(_("responded at"), null=True, blank=True)
    converted_at = models.DateTimeField(_("converted at"), null=True, blank=True)
    conversion_order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    revenue = models.DecimalField(_("attributed revenue"), max_digits=14, decimal_places=2, default=0)
    provider_id = models.CharField(max_length=100, blank=True)
    last_error = models.CharField(_("last error"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        indexes = [
            # The caps read a customer's marketing history on a channel by time.
            models.Index(
                fields=["customer", "planned_at"],
                include=["channel", "content_class"],
                condition=Q(category="marketing", planned_at__isnull=False),
                name="delivery_caps",
            ),
            # Back-off reads the latest marketing sends on a channel and their responses.
            models.Index(
                fields=["customer", "channel", "-sent_at"],
                condition=Q(category="marketing", sent_at__isnull=False),
                name="delivery_backoff",
            ),
            models.Index(fields=["customer", "-created_at"], name="delivery_customer"),
            # Senders claim what is due; the sweep finds what a dead worker held.
            models.Index(fields=["send_after"], condition=Q(status__in=["queued", "deferred"]), name="delivery_due"),
            models.Index(fields=["claimed_at"], condition=Q(status="sending"), name="delivery_claimed"),
            models.Index(fields=["campaign", "status"], name="delivery_campaign_status"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.channel} {self.status}"


class DeliveryEvent(models.Model):
    """A result reported for a delivery (callback or tracked link); unique per delivery,
    event and instant so a replayed callback changes nothing."""

    class Kind(models.TextChoices):
        DELIVERED = "delivered", _("delivered")
        OPENED = "opened", _("opened")
        CLICKED = "clicked", _("clicked")
        RESPONDED = "responded", _("responded")
        FAILED = "failed", pgettext_lazy("delivery", "failed")

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="events")
    event = models.CharField(max_length=12, choices=Kind.choices)
    at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("delivery event")
        verbose_name_plural = _("delivery events")
        constraints = [
            models.UniqueConstraint(fields=["delivery", "event", "at"], name="campaigns_delivery_event_unique")
        ]

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.event} {self.at:%Y-%m-%d %H:%M}"

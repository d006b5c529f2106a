"""Points ledger, earning rules, levels, badges and the points mall.

The ledger is append-only: a ``PointsEntry`` is never updated or deleted.
``PointsAccount.balance`` is a cache of ``SUM(entries.amount)`` that moves in
the same transaction as the entries, under the account's row lock;
``manage.py reconcile_points`` proves the two agree."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from users.models import Customer


class EntryKind(models.TextChoices):
    EARN = "earn", _("earn")
    SPEND = "spend", _("spend")
    EXPIRE = "expire", _("expire")
    ADJUST = "adjust", _("adjust")
    REVERSE = "reverse", _("reverse")


class EntrySource(models.TextChoices):
    RULE = "rule", _("earning rule")
    ORDER = "order", _("order")
    REDEMPTION = "redemption", _("redemption")
    OPERATOR = "operator", _("operator")
    API = "api", _("product backend")
    EXPIRY = "expiry", _("expiry job")


class PointsAccount(models.Model):
    customer = models.OneToOneField(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, primary_key=True, related_name="points_account"
    )
    balance = models.BigIntegerField(_("balance"), default=0)
    growth_value = models.BigIntegerField(_("growth value"), default=0)
    level = models.ForeignKey("Level", verbose_name=_("level"), null=True, blank=True, on_delete=models.SET_NULL)
    level_below_since = models.DateTimeField(
        _("below the level's threshold since"),
        null=True,
        blank=True,
        help_text=_("set while growth value is clearly under the level; the level drops after the grace period"),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("points account")
        verbose_name_plural = _("points accounts")
        constraints = [models.CheckConstraint(condition=Q(balance__gte=0), name="points_balance_non_negative")]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.balance}"


class PointsEntry(models.Model):
    # No index of its own: the (customer, idempotency_key) constraint and points_cust_time lead with it.
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="points_entries", db_index=False
    )
    kind = models.CharField(_("kind"), max_length=8, choices=EntryKind.choices)
    amount = models.BigIntegerField(_("amount"), help_text=_("signed: positive adds points, negative takes them"))
    growth = models.BigIntegerField(_("growth value"), default=0)
    reason = models.CharField(_("reason"), max_length=200)
    source = models.CharField(_("source"), max_length=10, choices=EntrySource.choices)
    source_ref = models.CharField(_("source reference"), max_length=100, blank=True)
    rule = models.ForeignKey("EarningRule", verbose_name=_("rule"), null=True, blank=True, on_delete=models.PROTECT)
    idempotency_key = models.CharField(_("idempotency key"), max_length=100)
    request_hash = models.CharField(max_length=64, blank=True, editable=False)
    reverses = models.OneToOneField(
        "self", verbose_name=_("reverses"), null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("operator"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    balance_after = models.BigIntegerField(_("balance after"))
    earned_on = models.DateField(
        _("earned on"),
        null=True,
        blank=True,
        help_text=_("the customer-local day of the fact a rule paid for (daily caps)"),
    )
    created_at = models.DateTimeField(_("created at"), db_index=True)
    expires_at = models.DateTimeField(
        _("expires at"),
        null=True,
        blank=True,
        help_text=_("on a credit: when its points lapse; on a reversal of a credit: the reversed credit's expiry"),
    )

    class Meta:
        verbose_name = _("points entry")
        verbose_name_plural = _("points entries")
        permissions = [("adjust_points", _("Can adjust a customer's points by hand"))]
        constraints = [
            models.UniqueConstraint(fields=["customer", "idempotency_key"], name="uniq_points_idempotency"),
            models.CheckConstraint(condition=~Q(amount=0), name="points_amount_non_zero"),
        ]
        indexes = [
            models.Index(fields=["customer", "created_at"], name="points_cust_time"),
            models.Index(fields=["customer", "expires_at"], name="points_cust_expiry"),
            models.Index(fields=["rule", "customer", "earned_on"], name="points_rule_cust_day"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount:+d} ({self.reason})"


class RuleKind(models.TextChoices):
    CHECKIN = "checkin", _("daily check-in")
    STREAK = "streak", _("check-in streak bonus")
    CONTENT = "content", _("content accepted")
    ACTIVITY = "activity", _("activity joined")
    PURCHASE = "purchase", _("purchase (points per yuan)")
    INVITE = "invite", _("invite accepted")


# The event type that triggers each event-driven rule.
RULE_EVENT_TYPES = {
    RuleKind.CHECKIN: "checkin",
    RuleKind.STREAK: "checkin",
    RuleKind.CONTENT: "content_accepted",
    RuleKind.ACTIVITY: "activity_joined",
    RuleKind.INVITE: "invite_accepted",
}


class EarningRule(models.Model):
    """An admin-edited way to earn points. Thresholds live here, not in code."""

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=10, choices=RuleKind.choices)
    points = models.PositiveIntegerField(
        _("points"), default=0, help_text=_("points per trigger (for invites: each of inviter and invitee)")
    )
    points_per_yuan = models.DecimalField(_("points per yuan"), max_digits=8, decimal_places=3, default=0)
    streak_days = models.PositiveIntegerField(
        _("streak days"), default=0, help_text=_("streak rules: pays on every N-th consecutive day")
    )
    daily_cap = models.PositiveIntegerField(
        _("daily cap"), default=0, help_text=_("most points a customer earns from this rule per day; 0 = no cap")
    )
    counts_for_growth = models.BooleanField(_("counts toward growth value"), default=True)
    active_from = models.DateTimeField(_("active from"), null=True, blank=True)
    active_until = models.DateTimeField(_("active until"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("earning rule")
        verbose_name_plural = _("earning rules")
        ordering = ["kind", "code"]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        errors = {}
        if self.kind == RuleKind.PURCHASE:
            if not self.points_per_yuan or self.points_per_yuan <= 0:
                errors["points_per_yuan"] = _("A purchase rule needs points per yuan above 0.")
        elif not self.points:
            errors["points"] = _("This rule needs a number of points above 0.")
        if self.kind == RuleKind.STREAK and self.streak_days < 2:
            errors["streak_days"] = _("A streak is at least 2 days.")
        if self.active_from and self.active_until and self.active_until <= self.active_from:
            errors["active_until"] = _("The end of the active period must come after its start.")
        if errors:
            raise ValidationError(errors)


class IncentivePolicy(models.Model):
    """The one row of program-wide settings (expiry, level grace)."""

    expiry_months = models.PositiveIntegerField(
        _("points expire after (months)"),
        default=12,
        help_text=_("points expire at the end of the N-th month after the month they were earned; 0 = never"),
    )
    reminder_days = models.PositiveIntegerField(_("remind this many days before expiry"), default=30)
    growth_window_days = models.PositiveIntegerField(_("growth value window (days)"), default=365)
    level_grace_days = models.PositiveIntegerField(_("level grace period (days)"), default=30)
    level_downgrade_margin_pct = models.PositiveIntegerField(
        _("downgrade margin (%)"),
        default=10,
        help_text=_("a level drops only when growth value is this far under its threshold for the whole grace period"),
    )

    class Meta:
        verbose_name = _("incentive policy")
        verbose_name_plural = _("incentive policy")

    def __str__(self) -> str:
        return str(_("Incentive policy"))

    def clean(self):
        if self.level_downgrade_margin_pct >= 100:
            raise ValidationError({"level_downgrade_margin_pct": _("The margin must be under 100%.")})


class Level(models.Model):
    name = models.CharField(_("name"), max_length=50)
    threshold = models.PositiveIntegerField(_("growth value threshold"), unique=True)
    benefits = models.TextField(_("benefits"), blank=True)

    class Meta:
        verbose_name = _("level")
        verbose_name_plural = _("levels")
        ordering = ["threshold"]

    def __str__(self) -> str:
        return self.name


class BadgeKind(models.TextChoices):
    CHECKIN_STREAK = "checkin_streak", _("check-in streak of N days")
    CONTENT_COUNT = "content_count", _("N accepted posts")
    INVITE_COUNT = "invite_count", _("N accepted invites")


class Badge(models.Model):
    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    description = models.CharField(_("description"), max_length=200, blank=True)
    kind = models.CharField(_("kind"), max_length=20, choices=BadgeKind.choices)
    threshold = models.PositiveIntegerField(_("threshold"))
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("badge")
        verbose_name_plural = _("badges")

    def __str__(self) -> str:
        return self.name

    def clean(self):
        if not self.threshold:
            raise ValidationError({"threshold": _("The threshold must be at least 1.")})


class CustomerBadge(models.Model):
    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="badges")
    badge = models.ForeignKey(Badge, verbose_name=_("badge"), on_delete=models.PROTECT, related_name="awards")
    awarded_at = models.DateTimeField(_("awarded at"))

    class Meta:
        verbose_name = _("awarded badge")
        verbose_name_plural = _("awarded badges")
        constraints = [models.UniqueConstraint(fields=["customer", "badge"], name="uniq_customer_badge")]

    def __str__(self) -> str:
        return f"{self.badge} → {self.customer_id}"


class Reward(models.Model):
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    points_price = models.PositiveIntegerField(_("points price"))
    stock = models.PositiveIntegerField(_("stock"), null=True, blank=True, help_text=_("empty = unlimited"))
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("reward")
        verbose_name_plural = _("rewards")
        constraints = [models.CheckConstraint(condition=Q(points_price__gt=0), name="reward_price_positive")]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValidationError({"valid_until": _("The end of validity must come after its start.")})


class Redemption(models.Model):
    class Status(models.TextChoices):
        COMPLETED = "completed", _("completed")
        CANCELLED = "cancelled", _("cancelled")

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="redemptions"
    )
    reward = models.ForeignKey(Reward, verbose_name=_("reward"), on_delete=models.PROTECT, related_name="redemptions")
    points = models.PositiveIntegerField(_("points"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.COMPLETED)
    idempotency_key = models.CharField(_("idempotency key"), max_length=100)
    spend_entry = models.OneToOneField(PointsEntry, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("created at"))
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)

    class Meta:
        verbose_name = _("redemption")
        verbose_name_plural = _("redemptions")
        constraints = [
            models.UniqueConstraint(fields=["customer", "idempotency_key"], name="uniq_redemption_idempotency")
        ]

    def __str__(self) -> str:
        return f"{self.reward} ← {self.customer_id}"

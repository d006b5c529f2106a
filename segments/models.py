"""Segments engine tables.

A recompute (``SegmentRun``) writes every customer's scores into rows of its
own; publishing a run is one UPDATE of the run pointer, so readers always see
one whole run. Incremental runs update the published run's rows in place in a
single transaction. ``StageChange`` and ``SegmentSizeSnapshot`` keep history;
``SegmentMembershipChange`` records entering and leaving a segment."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from users.models import Customer


class Stage(models.TextChoices):
    PROSPECT = "prospect", pgettext_lazy("lifecycle stage", "prospect")
    NEW = "new", pgettext_lazy("lifecycle stage", "new")
    GROWING = "growing", pgettext_lazy("lifecycle stage", "growing")
    MATURE = "mature", pgettext_lazy("lifecycle stage", "mature")
    CHURN_WARNING = "churn_warning", pgettext_lazy("lifecycle stage", "churn warning")
    CHURNED = "churned", pgettext_lazy("lifecycle stage", "churned")


class Tier(models.TextChoices):
    SUPER_VIP = "super_vip", pgettext_lazy("value tier", "super VIP")
    CORE = "core", pgettext_lazy("value tier", "core")
    ACTIVE = "active", pgettext_lazy("value tier", "active")
    NORMAL = "normal", pgettext_lazy("value tier", "normal")
    POTENTIAL = "potential", pgettext_lazy("value tier", "potential")


class OperatingClass(models.TextChoices):
    CORE_VALUE = "core_value", pgettext_lazy("operating class", "core value")
    POTENTIAL_GROWTH = "potential_growth", pgettext_lazy("operating class", "potential growth")
    ACTIVE_MAINTAIN = "active_maintain", pgettext_lazy("operating class", "active, maintain")
    SILENT_TO_WAKE = "silent_to_wake", pgettext_lazy("operating class", "silent, to wake")
    CHURN_RISK = "churn_risk", pgettext_lazy("operating class", "churn risk")


def default_rfm_groups() -> list[dict]:
    """SPEC's coarse groups on (R, F, M) scores; first match wins, else ``general``."""
    return [
        {"code": "high_value", "r": [4, 5], "f": [4, 5], "m": [4, 5]},
        {"code": "potential", "r": [2, 4], "f": [4, 5], "m": [2, 4]},
        {"code": "silent", "r": [1, 2], "f": [1, 2], "m": [1, 2]},
    ]


def default_rfm_segments() -> list[dict]:
    """The common finer map on R and FM = round((F + M) / 2); first match wins."""
    return [
        {"code": "champions", "r": [4, 5], "fm": [4, 5]},
        {"code": "cant_lose_them", "r": [1, 1], "fm": [4, 5]},
        {"code": "loyal", "r": [3, 5], "fm": [3, 5]},
        {"code": "at_risk", "r": [1, 2], "fm": [3, 5]},
        {"code": "new", "r": [5, 5], "fm": [1, 1]},
        {"code": "potential_loyalist", "r": [3, 5], "fm": [2, 3]},
        {"code": "promising", "r": [3, 4], "fm": [1, 1]},
        {"code": "need_attention", "r": [2, 3], "fm": [2, 3]},
        {"code": "about_to_sleep", "r": [2, 3], "fm": [1, 2]},
        {"code": "hibernating", "r": [1, 2], "fm": [2, 2]},
        {"code": "lost", "r": [1, 2], "fm": [1, 1]},
    ]


class RuleSet(models.Model):
    """Every threshold the engine uses. Editing in the admin saves a new version;
    the newest active version is used by the next recompute."""

    version = models.PositiveIntegerField(_("version"), unique=True, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    rfm_window_days = models.PositiveIntegerField(_("RFM window (days)"), default=365)
    tier_super_vip_annual = models.DecimalField(
        _("super VIP: annual spend above"), max_digits=12, decimal_places=2, default=100000
    )
    tier_core_annual = models.DecimalField(_("core: annual spend from"), max_digits=12, decimal_places=2, default=50000)
    tier_active_monthly = models.DecimalField(
        _("active: monthly spend above"), max_digits=12, decimal_places=2, default=2000
    )
    tier_normal_monthly = models.DecimalField(
        _("normal: monthly spend from"), max_digits=12, decimal_places=2, default=200
    )
    new_days = models.PositiveIntegerField(_("new: signed up within (days)"), default=30)
    mature_min_orders = models.PositiveIntegerField(_("mature: paid orders in window at least"), default=3)
    churn_warning_p_alive = models.FloatField(_("churn warning: P(alive) under"), default=0.5)
    churned_p_alive = models.FloatField(_("churned: P(alive) under"), default=0.15)
    warning_inactive_days = models.PositiveIntegerField(_("churn warning: no order for (days)"), default=180)
    churned_inactive_days = models.PositiveIntegerField(_("churned: no order for (days)"), default=365)
    clv_horizon_days = models.PositiveIntegerField(_("CLV horizon (days)"), default=365)
    rfm_groups = models.JSONField(_("RFM groups"), default=default_rfm_groups)
    rfm_segments = models.JSONField(_("RFM segment map"), default=default_rfm_segments)

    class Meta:
        verbose_name = _("segment rule set")
        verbose_name_plural = _("segment rule sets")
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"v{self.version}"

    def clean(self):
        from .rules import validate_rule_set

        errors = validate_rule_set(self)
        if errors:
            raise ValidationError(errors)


class SegmentRun(models.Model):
    class Kind(models.TextChoices):
        FULL = "full", _("full")
        INCREMENTAL = "incremental", _("incremental")

    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        PUBLISHED = "published", _("published")
        SUPERSEDED = "superseded", _("superseded")
        APPLIED = "applied", _("applied to the published run")
        FAILED = "failed", _("failed")

    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices, default=Kind.FULL)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.RUNNING, db_index=True)
    as_of = models.DateTimeField(_("as of"))
    rule_set = models.ForeignKey(RuleSet, verbose_name=_("rule set"), on_delete=models.PROTECT)
    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    # Last sign of progress (a phase or a chunk done): a run is abandoned when this is
    # old, however long the run has been going (``services.recompute.STALE_AFTER``).
    heartbeat_at = models.DateTimeField(_("last progress at"), null=True, blank=True)
    published_at = models.DateTimeField(_("published at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)
    phases = models.JSONField(_("seconds per phase"), default=dict, blank=True)
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    model_params = models.JSONField(_("churn model parameters"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("segment recompute")
        verbose_name_plural = _("segment recomputes")
        ordering = ["-started_at"]
        constraints = [
            # Two recomputes never run at once: the second cannot even be created.
            models.UniqueConstraint(
                fields=["status"], condition=models.Q(status="running"), name="one_running_recompute"
            ),
        ]

    def __str__(self) -> str:
        return _("#%(id)s %(kind)s, %(status)s, as of %(day)s") % {
            "id": self.pk,
            "kind": self.get_kind_display(),
            "status": self.get_status_display(),
            "day": f"{self.as_of:%Y-%m-%d}",
        }


class ScoreColumns(models.Model):
    """The columns of a customer's results in a run (shared by the stored scores and the
    incremental run's scoped copy)."""

    # Summary of paid orders (window for RFM; whole history up to as-of for the model).
    recency_days = models.IntegerField(null=True)
    frequency = models.IntegerField(default=0)
    monetary = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    orders_total = models.IntegerField(default=0)
    first_order_at = models.DateTimeField(null=True)
    last_order_at = models.DateTimeField(null=True)
    mean_order_value = models.DecimalField(max_digits=14, decimal_places=2, null=True)
    r_score = models.SmallIntegerField(null=True)
    f_score = models.SmallIntegerField(null=True)
    m_score = models.SmallIntegerField(null=True)
    rfm_group = models.CharField(max_length=20, blank=True)
    rfm_segment = models.CharField(max_length=24, blank=True)
    tier = models.CharField(max_length=12, choices=Tier.choices, blank=True)
    operating_class = models.CharField(max_length=20, choices=OperatingClass.choices, blank=True)
    stage = models.CharField(max_length=16, choices=Stage.choices, blank=True)
    p_alive = models.FloatField(null=True)
    expected_purchases_90d = models.FloatField(null=True)
    expected_order_value = models.DecimalField(max_digits=14, decimal_places=2, null=True)
    clv = models.DecimalField(max_digits=16, decimal_places=2, null=True)

    class Meta:
        abstract = True


class CustomerScore(ScoreColumns):
    """One customer's results in one run."""

    # Written only by the engine, from ids it has just read, a million rows at a time: no
    # database-level FK checks (Django still cascades deletes), no extra indexes.
    run = models.ForeignKey(
        SegmentRun, on_delete=models.CASCADE, related_name="scores", db_index=False, db_constraint=False
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )

    class Meta:
        verbose_name = _("customer score")
        verbose_name_plural = _("customer scores")
        # One index only: every read is "this customer (or these) in this run".
        constraints = [models.UniqueConstraint(fields=["run", "customer"], name="uniq_score_run_customer")]

    def __str__(self) -> str:
        return f"{self.customer_id}@run{self.run_id}: {self.stage} {self.tier}"


class ScopedScore(models.Model):
    """The published scores, as custom segment definitions read them, of the customers an
    incremental run re-evaluates segments for: a temporary table (``services.membership.scope_open``)
    read instead of the million-row score table. Only the columns definitions use."""

    customer = models.OneToOneField(
        Customer, primary_key=True, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False
    )
    recency_days = models.IntegerField(null=True)
    frequency = models.IntegerField(default=0)
    monetary = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    r_score = models.SmallIntegerField(null=True)
    f_score = models.SmallIntegerField(null=True)
    m_score = models.SmallIntegerField(null=True)
    rfm_group = models.CharField(max_length=20, blank=True)
    rfm_segment = models.CharField(max_length=24, blank=True)
    tier = models.CharField(max_length=12, blank=True)
    stage = models.CharField(max_length=16, blank=True)
    operating_class = models.CharField(max_length=20, blank=True)
    p_alive = models.FloatField(null=True)
    clv = models.DecimalField(max_digits=16, decimal_places=2, null=True)

    class Meta:
        managed = False
        db_table = "tmp_scope_scores"

    def __str__(self) -> str:
        return f"{self.customer_id} (scoped): {self.stage} {self.tier}"


class StageChange(models.Model):
    # Written only by the engine (see CustomerScore): no database-level FK checks; the
    # customer is indexed through stagechange_cust_at, which leads with it.
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="stage_changes",
        db_index=False,
        db_constraint=False,
    )
    from_stage = models.CharField(_("from"), max_length=16, choices=Stage.choices, blank=True)
    to_stage = models.CharField(_("to"), max_length=16, choices=Stage.choices)
    at = models.DateTimeField(_("at"))
    run = models.ForeignKey(
        SegmentRun,
        verbose_name=_("recompute run"),
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    reactivated = models.BooleanField(_("reactivated (回流)"), default=False)

    class Meta:
        verbose_name = _("stage change")
        verbose_name_plural = _("stage changes")
        indexes = [
            models.Index(fields=["customer", "at"], name="stagechange_cust_at"),
            models.Index(fields=["at"], name="stagechange_at"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.get_from_stage_display() or '-'} → {self.get_to_stage_display()}"


class SegmentSizeSnapshot(models.Model):
    """A dated size of every segment (built-in keys like ``stage:mature`` and ``custom:<slug>``)."""

    run = models.ForeignKey(SegmentRun, verbose_name=_("recompute run"), on_delete=models.CASCADE, related_name="+")
    as_of = models.DateTimeField(_("as of"), db_index=True)
    key = models.CharField(_("segment key"), max_length=80)
    size = models.PositiveIntegerField(_("size"))

    class Meta:
        verbose_name = _("segment size snapshot")
        verbose_name_plural = _("segment size snapshots")
        indexes = [models.Index(fields=["key", "as_of"], name="sizesnap_key_asof")]

    def __str__(self) -> str:
        return f"{self.key}={self.size}"


class Segment(models.Model):
    class Kind(models.TextChoices):
        DYNAMIC = "dynamic", _("dynamic (conditions)")
        STATIC = "static", _("static (uploaded list)")

    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    name = models.CharField(_("segment name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.DYNAMIC)
    definition = models.JSONField(_("definition"), default=dict, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    size = models.PositiveIntegerField(_("size"), default=0)
    computed_at = models.DateTimeField(_("computed at"), null=True, blank=True)
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
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(models.Model):
    # Written only by the engine, from ids it has just read, hundreds of thousands at a
    # time: no database-level FK checks (PostgreSQL would queue one deferred check per
    # row and run them at commit — 15 s of a first publish; Django still cascades
    # deletes), and no index the unique constraint or segmember_customer already gives.
    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="memberships", db_index=False, db_constraint=False
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="segment_memberships", db_index=False, db_constraint=False
    )
    since = models.DateTimeField(_("since"))

    class Meta:
        verbose_name = _("segment membership")
        verbose_name_plural = _("segment memberships")
        constraints = [models.UniqueConstraint(fields=["segment", "customer"], name="uniq_segment_member")]
        indexes = [models.Index(fields=["customer"], name="segmember_customer")]

    def __str__(self) -> str:
        return f"{self.customer_id} ∈ {self.segment_id}"


class SegmentMembershipChange(models.Model):
    """Entering or leaving a segment: what later campaigns trigger on."""

    class Change(models.TextChoices):
        ENTER = "enter", _("entered")
        LEAVE = "leave", _("left")

    # Written only by the engine (see SegmentMembership): no database-level FK checks; the
    # segment is indexed through segchange_seg_at, which leads with it.
    segment = models.ForeignKey(
        Segment,
        verbose_name=_("segment"),
        on_delete=models.CASCADE,
        related_name="changes",
        db_index=False,
        db_constraint=False,
    )
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    change = models.CharField(_("change"), max_length=5, choices=Change.choices)
    at = models.DateTimeField(_("at"), db_index=True)

    class Meta:
        verbose_name = _("segment membership change")
        verbose_name_plural = _("segment membership changes")
        indexes = [models.Index(fields=["segment", "at"], name="segchange_seg_at")]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.change} {self.segment_id}"


class AggregateStaging(models.Model):
    """Per-customer order summary a recompute's chunks write before scoring.
    Plain ids (no foreign keys) so bulk inserts pay no constraint checks."""

    run_id = models.BigIntegerField()
    customer_id = models.BigIntegerField()
    signup_age_days = models.FloatField(null=True)
    recency_days = models.IntegerField(null=True)
    frequency = models.IntegerField()
    monetary = models.DecimalField(max_digits=14, decimal_places=2)
    orders_total = models.IntegerField()
    first_order_at = models.DateTimeField(null=True)
    last_order_at = models.DateTimeField(null=True)
    mean_order_value = models.DecimalField(max_digits=14, decimal_places=2, null=True)
    # The Gamma-Gamma input: mean value of the repeat orders (all paid orders but the first).
    repeat_mean_value = models.FloatField(null=True)
    t_x_days = models.FloatField(null=True)
    age_days = models.FloatField(null=True)

    def __str__(self) -> str:
        return f"run{self.run_id}/{self.customer_id}"


class PredictionStaging(models.Model):
    """The purchase model's predictions for a run's buyers, before scoring (staging)."""

    run_id = models.BigIntegerField()
    customer_id = models.BigIntegerField()
    p_alive = models.FloatField()
    expected_purchases_90d = models.FloatField()
    # Floats here (binary COPY from numpy); rounded to money when scored.
    expected_order_value = models.FloatField()
    clv = models.FloatField()

    def __str__(self) -> str:
        return f"run{self.run_id}/{self.customer_id}"

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Gender(models.TextChoices):
    UNKNOWN = "unknown", _("unknown")
    FEMALE = "female", _("female")
    MALE = "male", _("male")
    OTHER = "other", _("other")


class Channel(models.TextChoices):
    """Reach-out channels a customer can consent to."""

    PUSH = "push", _("app push")
    SMS = "sms", _("SMS")
    EMAIL = "email", _("email")
    WECHAT = "wechat", _("WeChat service account")
    IN_APP = "in_app", _("in-app message")


CONSENT_FIELDS = {channel: f"consent_{channel}" for channel in Channel.values}
# The scalar fields an ingested row may set (the API, a file import, the admin); consent,
# tags and referred_by are handled apart. One list, read by the services and the importer.
CUSTOMER_SCALAR_FIELDS = [
    "name",
    "nickname",
    "phone",
    "email",
    "gender",
    "birthday",
    "city",
    "timezone",
    "signup_at",
    "channel",
    "do_not_contact",
]


def default_timezone() -> str:
    return settings.OPS_DEFAULT_CUSTOMER_TIMEZONE


class Customer(models.Model):
    external_id = models.CharField(_("external id"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=100, blank=True)
    nickname = models.CharField(_("nickname"), max_length=100, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    email = models.CharField(_("email"), max_length=254, blank=True)
    gender = models.CharField(_("gender"), max_length=8, choices=Gender.choices, default=Gender.UNKNOWN)
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    city = models.CharField(_("city"), max_length=64, blank=True)
    timezone = models.CharField(_("timezone"), max_length=64, default=default_timezone)
    signup_at = models.DateTimeField(_("signed up at"), null=True, blank=True, db_index=True)
    channel = models.CharField(_("acquisition channel"), max_length=64, blank=True, db_index=True)
    referred_by = models.ForeignKey(
        "self",
        verbose_name=_("referred by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="referrals",
    )
    consent_push = models.BooleanField(_("consent: app push"), default=False)
    consent_sms = models.BooleanField(_("consent: SMS"), default=False)
    consent_email = models.BooleanField(_("consent: email"), default=False)
    consent_wechat = models.BooleanField(_("consent: WeChat"), default=False)
    consent_in_app = models.BooleanField(_("consent: in-app"), default=False)
    do_not_contact = models.BooleanField(_("do not contact"), default=False)
    # Order roll-up kept by the worker (users.services.customer_order_stats_refresh).
    paid_orders = models.PositiveIntegerField(_("paid orders"), default=0)
    paid_amount = models.DecimalField(_("paid amount"), max_digits=14, decimal_places=2, default=0)
    first_order_at = models.DateTimeField(_("first order at"), null=True, blank=True)
    last_order_at = models.DateTimeField(_("last order at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        permissions = [("view_pii", _("Can see unmasked phone numbers and emails"))]
        indexes = [models.Index(fields=["phone"]), models.Index(fields=["email"])]

    def __str__(self) -> str:
        return self.nickname or self.name or self.external_id

    def consent(self) -> dict[str, bool]:
        return {channel: getattr(self, field) for channel, field in CONSENT_FIELDS.items()}


class CustomerTag(models.Model):
    # No index of its own: the (customer, tag) unique constraint leads with it.
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="tags", db_index=False)
    tag = models.CharField(_("tag"), max_length=50, db_index=True)

    class Meta:
        verbose_name = _("customer tag")
        verbose_name_plural = _("customer tags")
        constraints = [models.UniqueConstraint(fields=["customer", "tag"], name="uniq_customer_tag")]

    def __str__(self) -> str:
        return self.tag


class OrderStatus(models.TextChoices):
    PAID = "paid", _("paid")
    REFUNDED = "refunded", _("refunded")
    CANCELLED = "cancelled", _("cancelled")


class Order(models.Model):
    external_id = models.CharField(_("external id"), max_length=64, unique=True)
    # No index of its own: order_cust_time leads with it (one index less to write per order).
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    status = models.CharField(_("status"), max_length=10, choices=OrderStatus.choices, default=OrderStatus.PAID)
    occurred_at = models.DateTimeField(_("occurred at"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # Indexed: an incremental segment recompute finds the orders changed since the last run.
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        indexes = [
            # Per-customer aggregation (RFM, roll-ups) reads these columns only.
            models.Index(fields=["customer", "occurred_at"], include=["amount", "status"], name="order_cust_time"),
            models.Index(fields=["occurred_at"], name="order_time"),
            # The admin's currency filter (its values by skip-scan, then newest first).
            models.Index(fields=["currency", "occurred_at"], name="order_currency_time"),
        ]
        constraints = [models.CheckConstraint(condition=models.Q(amount__gte=0), name="order_amount_non_negative")]

    def __str__(self) -> str:
        return self.external_id


class Event(models.Model):
    """Something a customer did. ``dedupe_key`` makes ingestion idempotent:
    ``x:<external_id>`` when the client sends one, else a hash of the content."""

    # No index of its own: event_cust_type_time leads with it.
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="events", db_index=False
    )
    type = models.CharField(_("type"), max_length=32)
    occurred_at = models.DateTimeField(_("occurred at"))
    properties = models.JSONField(_("properties"), default=dict, blank=True)
    external_id = models.CharField(_("external id"), max_length=64, null=True, blank=True)
    dedupe_key = models.CharField(max_length=80, unique=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        indexes = [
            models.Index(fields=["customer", "type", "occurred_at"], name="event_cust_type_time"),
            models.Index(fields=["type", "occurred_at"], name="event_type_time"),
            models.Index(fields=["occurred_at"], name="event_time"),
            # Arrival order: the incremental recompute asks who had events since its last run.
            models.Index(fields=["created_at"], name="event_arrived"),
        ]

    def __str__(self) -> str:
        return f"{self.type}@{self.occurred_at:%Y-%m-%d %H:%M}"

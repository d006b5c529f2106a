import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ApiScope(models.TextChoices):
    CUSTOMERS_READ = "customers:read", _("Read customers")
    CUSTOMERS_WRITE = "customers:write", _("Write customers, orders and events")
    CUSTOMERS_PII = "customers:pii", _("See unmasked phone and email")
    SEGMENTS_READ = "segments:read", _("Read segments")
    POINTS_WRITE = "points:write", _("Earn, spend and redeem points")
    TICKETS_WRITE = "tickets:write", _("Open tickets and post customers' replies")
    TICKETS_READ = "tickets:read", _("Read tickets (public replies only)")
    MESSAGES_WRITE = "messages:write", _("Send messages and report delivery results")
    COMMUNITIES_WRITE = "communities:write", _("Push community messages")
    CAMPAIGNS_WRITE = "campaigns:write", _("Create, launch and pause campaigns")


KEY_PREFIX = "opsk"


def hash_secret(secret: str) -> str:
    # Keys are 256-bit random values, so a fast hash is enough (as for GitHub
    # tokens): there is no dictionary to guess from, and each request pays it.
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKey(models.Model):
    """A scoped, revocable key for the product backend. Only its hash is kept."""

    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=12, unique=True, editable=False)
    hashed_secret = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(_("scopes"), default=list, blank=True)
    rate_limit = models.CharField(
        _("rate limit"), max_length=20, blank=True, help_text=_("e.g. 600/min; empty uses the default")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({KEY_PREFIX}_{self.prefix}_…)"

    @staticmethod
    def generate() -> tuple[str, str, str]:
        """Returns (full key, prefix, hashed secret)."""
        prefix = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        return f"{KEY_PREFIX}_{prefix}_{secret}", prefix, hash_secret(secret)

    def inactive_reason(self, now=None) -> str | None:
        """Why the key is refused (``"revoked"`` or ``"expired"``), or ``None`` while it works.
        The one definition of a working key: authentication and the admin read it."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or timezone.now()):
            return "expired"
        return None

    @property
    def is_active(self) -> bool:
        return self.inactive_reason() is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class AuditEntry(models.Model):
    """Who changed what, from what to what. Written by services next to the change."""

    at = models.DateTimeField(_("at"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(_("actor"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=60)
    object_type = models.CharField(_("object type"), max_length=60)
    object_id = models.CharField(_("object id"), max_length=64)
    changes = models.JSONField(_("changes"), default=dict, blank=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        ordering = ["-at"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_type}#{self.object_id}"


class JobRun(models.Model):
    """One run of a periodic job: start, end, status, counts, duration."""

    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")
        SKIPPED = "skipped", _("skipped (already running)")

    job = models.CharField(_("job"), max_length=80, db_index=True)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("job run")
        verbose_name_plural = _("job runs")
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["job", "-started_at"])]

    def __str__(self) -> str:
        return f"{self.job} {self.status} {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class DisplayName(models.Model):
    """The operator-facing name, per language, of a key that comes from data (an
    acquisition channel, an event type, an event property). Admin-editable; a data
    migration seeds the built-in list; an unknown key shows as itself."""

    class Kind(models.TextChoices):
        CHANNEL = "channel", _("Acquisition channel")
        EVENT_TYPE = "event_type", _("Event type")
        EVENT_PROPERTY = "event_property", _("Event property")
        EVENT_VALUE = "event_value", _("Event property value")

    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    key = models.CharField(_("key"), max_length=100, help_text=_("The value as stored, e.g. douyin or add_to_cart"))
    name_en = models.CharField(_("English name"), max_length=100)
    name_zh_hans = models.CharField(_("Simplified Chinese name"), max_length=100)

    class Meta:
        verbose_name = _("display name")
        verbose_name_plural = _("display names")
        ordering = ["kind", "key"]
        constraints = [models.UniqueConstraint(fields=["kind", "key"], name="core_displayname_kind_key_unique")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.key}"

    def name_for(self, language: str | None) -> str:
        """The name in ``language`` (a Django language code); English for any other."""
        if (language or "").lower().startswith("zh"):
            return self.name_zh_hans or self.name_en or self.key
        return self.name_en or self.key

"""Ops Desk settings: one module driven by environment variables.

With no environment at all the app runs on the embedded default: SQLite in
``var/``, a file-system Celery broker and result store, and a file cache, so
one command brings up a working demo. Production sets ``DATABASE_URL``,
``REDIS_URL`` and ``SECRET_KEY`` and uses ``ops_site.settings.production``.
"""

import os
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("OPS_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-insecure-key-change-me-in-production-0123456789")
DEBUG = env_bool("DEBUG", True)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "import_export",
    "axes",
    "core",
    "users",
    "segments",
    "communities",
    "incentives",
    "campaigns",
    "feedback",
    "dashboards",
    "console",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.RefuseBadTextInUrlMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "core.middleware.ApiLanguageMiddleware",
    "core.middleware.CommonMiddleware",  # Django's, minus slash redirects of API writes
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "ops_site.urls"
WSGI_APPLICATION = "ops_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'ops_desk.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # WAL lets the web server, the worker and beat read while one writes.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file (not memory) so a real worker process in the tests sees the same data.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_ops_desk.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USING_POSTGRES = DATABASES["default"]["ENGINE"].endswith(("postgresql", "postgis"))

# --- Cache, broker ------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
    CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", REDIS_URL)
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
else:
    # Embedded default: works across processes (web, worker, beat) with no server.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
    _broker_dir = VAR_DIR / "broker"
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    (VAR_DIR / "celery-results").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        "control_folder": str(_broker_dir / "control"),
    }
    CELERY_RESULT_BACKEND = f"file://{VAR_DIR / 'celery-results'}"

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# A dedicated queue per deployment (or per test run) keeps workers apart on a shared broker.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_DEFAULT_QUEUE", "celery")
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 60 * 30
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Auth and sessions --------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboards:home"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(8 * 3600)))
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
# Login lockout (django-axes): N failures per user+IP lock for the cool-off.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(os.environ.get("AXES_COOLOFF_HOURS", "0.25"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# --- i18n ---------------------------------------------------------------
LANGUAGE_CODE = os.environ.get("LANGUAGE_CODE", "zh-hans")
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
# Numbers shown with intcomma or floatformat:"g" are grouped by thousands in both languages.
FORMAT_MODULE_PATH = ["ops_site.formats"]
USE_TZ = True
# The customer's timezone when the product backend sends none.
OPS_DEFAULT_CUSTOMER_TIMEZONE = os.environ.get("OPS_DEFAULT_CUSTOMER_TIMEZONE", "Asia/Shanghai")
OPS_CURRENCY = os.environ.get("OPS_CURRENCY", "CNY")

# --- Static -------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Uploaded files (ticket attachments): private, served only through an operator's view.
MEDIA_ROOT = Path(os.environ.get("OPS_MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "/media/"

# --- Email: the console in the demo, SMTP (or any backend) by settings ----------
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = os.environ.get("EMAIL_USE_TLS", "") == "1"
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Ops Desk <ops-desk@localhost>")
#: the public address of the site, for links in emails (CSAT links)
OPS_SITE_URL = os.environ.get("OPS_SITE_URL") or "http://127.0.0.1:8000"

# --- Campaigns: the channels' backends -------------------------------------
# OPS_CHANNEL_<NAME> is "log" (records what it would send), "email" (Django's email
# backends) or a gateway's http(s) URL (the webhook backend), with
# OPS_CHANNEL_<NAME>_SECRET signing its requests (HMAC-SHA256 of the body) and
# OPS_CHANNEL_<NAME>_RATE the channel's global sends per second across all workers.
OPS_CHANNELS = ["push", "sms", "email", "wechat", "in_app"]
# An empty value means the default, as when unset (docker-compose passes empty ones).
OPS_CHANNEL_BACKENDS = {name: os.environ.get(f"OPS_CHANNEL_{name.upper()}") or "log" for name in OPS_CHANNELS}
OPS_CHANNEL_SECRETS = {name: os.environ.get(f"OPS_CHANNEL_{name.upper()}_SECRET", "") for name in OPS_CHANNELS}
OPS_CHANNEL_RATES = {
    name: float(os.environ[f"OPS_CHANNEL_{name.upper()}_RATE"])
    for name in OPS_CHANNELS
    if os.environ.get(f"OPS_CHANNEL_{name.upper()}_RATE")
}
#: the log backend's record of every hand-over, one JSON line each
OPS_CHANNEL_LOG_FILE = Path(os.environ.get("OPS_CHANNEL_LOG_FILE", VAR_DIR / "channel-log.jsonl"))
#: the webhook backend's connect and read time-outs, in seconds
OPS_CHANNEL_CONNECT_TIMEOUT = float(os.environ.get("OPS_CHANNEL_CONNECT_TIMEOUT", "3"))
OPS_CHANNEL_READ_TIMEOUT = float(os.environ.get("OPS_CHANNEL_READ_TIMEOUT", "10"))

#: the outbox: deliveries a sender claims at once, how long a claim is held before the
#: recovery sweep decides its worker died, and how often a failing hand-over is retried
OPS_OUTBOX_BATCH = int(os.environ.get("OPS_OUTBOX_BATCH", "200"))
OPS_OUTBOX_LEASE_SECONDS = int(os.environ.get("OPS_OUTBOX_LEASE_SECONDS", "900"))
OPS_OUTBOX_MAX_ATTEMPTS = int(os.environ.get("OPS_OUTBOX_MAX_ATTEMPTS", "6"))

# --- Feedback -------------------------------------------------------------
FEEDBACK_ATTACHMENT_MAX_BYTES = int(os.environ.get("FEEDBACK_ATTACHMENT_MAX_BYTES", str(10 * 1024 * 1024)))
FEEDBACK_ATTACHMENT_MAX_COUNT = 10
FEEDBACK_ATTACHMENT_TYPES = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
]
# CSAT and NPS links: how long a link may be answered; the language customers' emails are written in.
FEEDBACK_CSAT_MAX_AGE_DAYS = int(os.environ.get("FEEDBACK_CSAT_MAX_AGE_DAYS", "14"))
FEEDBACK_NPS_MAX_AGE_DAYS = int(os.environ.get("FEEDBACK_NPS_MAX_AGE_DAYS", "30"))
FEEDBACK_CUSTOMER_LANGUAGE = os.environ.get("FEEDBACK_CUSTOMER_LANGUAGE", "zh-hans")

# --- REST API -----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["core.renderers.SafeJSONRenderer"],  # never a 500 over a lone surrogate
    "DEFAULT_PARSER_CLASSES": ["core.json.BoundedJSONParser"],  # JSON nested at most 64 deep
    "DEFAULT_THROTTLE_CLASSES": ["core.throttling.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": os.environ.get("API_KEY_DEFAULT_RATE", "600/min")},
    "EXCEPTION_HANDLER": "core.api_errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Ops Desk API",
    "DESCRIPTION": "REST API v1: the contract between the product backend and Ops Desk.",
    "VERSION": "1.0.0",
    # 3.1: JSON Schema 2020-12, the dialect the pydantic row models emit (numeric exclusiveMinimum).
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI assets are served from our own static files (no CDN).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Fields named alike in different components (a ticket's category, a message's).
    "ENUM_NAME_OVERRIDES": {
        "ReachChannelEnum": ["push", "sms", "email", "wechat", "in_app"],
        "MessageCategoryEnum": ["marketing", "transactional"],
    },
}
# Ingestion knobs: the contract says at most 1,000 items per batch.
OPS_BATCH_MAX_ITEMS = 1000
# Data upload limit: 1,000 rich customer rows fit comfortably in 10 MB.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# Exports neutralise formulas themselves (core.exports: = + - @ tab CR, every format);
# the library's switch only strips a leading "=" and turns every cell into text.
IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT = False

# --- Logging: one JSON line per event, phone numbers and emails masked -----
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_pii": {"()": "core.logging.MaskPIIFilter"}},
    "formatters": {"json": {"()": "core.logging.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["mask_pii"]},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}

# --- Security headers that hold in every environment ----------------------
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy (django-csp): nothing from another site, no inline script (every
# script is a file of ours; the API docs use drf-spectacular's split view for that).
# Inline style attributes are allowed: they carry no code, and a few layouts use them.
from csp.constants import NONE, SELF, UNSAFE_INLINE  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# The largest single order accepted (in OPS_CURRENCY); anything above is a data error.
from decimal import Decimal  # noqa: E402

OPS_MAX_ORDER_AMOUNT = Decimal(os.environ.get("OPS_MAX_ORDER_AMOUNT", "1000000"))

# --- Periodic jobs (celery beat). Every entry expires so a backlog never piles up.
from celery.schedules import crontab  # noqa: E402

CELERY_BEAT_SCHEDULE = {
    "users-order-stats-nightly": {
        "task": "users.customer_order_stats_refresh_all",
        "schedule": crontab(hour=18, minute=30),  # 02:30 Asia/Shanghai
        "options": {"expires": 3 * 3600},
    },
}
CELERY_BEAT_SCHEDULE |= {
    # Deferred sends whose time came, retries whose back-off ran out, claims of dead workers.
    "campaigns-tick": {"task": "campaigns.tick", "schedule": 60.0, "options": {"expires": 55}},
    "campaigns-outbox-sweep": {
        "task": "campaigns.outbox_recover",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
}
CELERY_BEAT_SCHEDULE |= {
    "incentives-points-expire-nightly": {
        "task": "incentives.points_expire",
        "schedule": crontab(hour=16, minute=5),  # 00:05 Asia/Shanghai, just after points lapse at midnight
        "options": {"expires": 3 * 3600},
    },
    "incentives-levels-nightly": {
        "task": "incentives.levels_refresh",
        "schedule": crontab(hour=19, minute=0),
        "options": {"expires": 3 * 3600},
    },
}
CELERY_BEAT_SCHEDULE |= {
    "segments-recompute-nightly": {
        "task": "segments.recompute",
        "schedule": crontab(hour=17, minute=0),  # 01:00 Asia/Shanghai
        "options": {"expires": 3 * 3600},
    },
    "segments-recompute-incremental": {
        "task": "segments.recompute_incremental",
        "schedule": crontab(minute="*/15"),
        "options": {"expires": 600},
    },
}
CELERY_BEAT_SCHEDULE |= {
    "feedback-sla-escalation-sweep": {
        "task": "feedback.sla_escalation_sweep",
        "schedule": 60.0,  # every minute: warnings and breaches go out within a minute
        "options": {"expires": 55},
    },
    "feedback-themes-suggest-hourly": {
        "task": "feedback.themes_suggest",
        "schedule": crontab(minute=40),
        "options": {"expires": 50 * 60},
    },
}
CELERY_BEAT_SCHEDULE |= {
    "communities-health-rollup-nightly": {
        "task": "communities.health_rollup_nightly",
        "schedule": crontab(hour=16, minute=30),  # 00:30 Asia/Shanghai: yesterday's group health
        "options": {"expires": 3 * 3600},
    },
}
# The covering index on orders is a PostgreSQL feature; SQLite just ignores the INCLUDE.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

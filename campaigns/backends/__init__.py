"""The channels' backends: what hands a delivery to the outside world.

``backend_for(channel)`` answers the backend ``settings.OPS_CHANNEL_BACKENDS`` names for
the channel: ``"log"`` (``LogBackend``: records what it would send), ``"email"``
(``EmailBackend``: Django's email API) or a gateway's http(s) URL (``WebhookBackend``,
signing with ``settings.OPS_CHANNEL_SECRETS[channel]``). Every backend takes a
``Handover`` and answers an ``Outcome``: sent, retry (temporary) or failed (permanent).
``rate.take`` is the channel's global send rate; ``check_configuration`` lists what is
wrong with the settings, for a system check."""

import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from .base import FAILED, RETRY, SENT, Backend, Handover, Outcome
from .email import EmailBackend
from .log import LogBackend, read_log
from .webhook import WebhookBackend, sign, verify

__all__ = [
    "FAILED",
    "RETRY",
    "SENT",
    "Backend",
    "EmailBackend",
    "Handover",
    "LogBackend",
    "Outcome",
    "WebhookBackend",
    "backend_for",
    "check_configuration",
    "read_log",
    "sign",
    "verify",
]

_PLAIN = re.compile(r"[\w.-]{0,40}")


def _configured(channel: str) -> str:
    return (settings.OPS_CHANNEL_BACKENDS.get(channel) or "log").strip()


def _is_webhook(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def _shown(value: str) -> str:
    """The value for a message, unless it may be a URL with credentials in it."""
    return repr(value) if _PLAIN.fullmatch(value) else "(not shown)"


def backend_for(channel: str) -> Backend:
    """The channel's backend, per ``settings.OPS_CHANNEL_BACKENDS``."""
    if channel not in settings.OPS_CHANNELS:
        raise ValueError(f"unknown channel {channel!r}: the channels are {', '.join(settings.OPS_CHANNELS)}")
    value = _configured(channel)
    if value == "log":
        return LogBackend()
    if value == "email":
        return EmailBackend()
    if _is_webhook(value):
        return WebhookBackend(
            value,
            secret=settings.OPS_CHANNEL_SECRETS.get(channel, ""),
            connect_timeout=settings.OPS_CHANNEL_CONNECT_TIMEOUT,
            read_timeout=settings.OPS_CHANNEL_READ_TIMEOUT,
        )
    raise ImproperlyConfigured(
        f"OPS_CHANNEL_BACKENDS[{channel!r}] (env OPS_CHANNEL_{channel.upper()}) is {_shown(value)}: "
        'expected "log", "email" or a gateway\'s http(s):// URL'
    )


def check_configuration() -> list[str]:
    """What is wrong with the channels' settings, one operator-facing sentence each."""
    problems = []
    for channel in settings.OPS_CHANNELS:
        value = _configured(channel)
        env = f"OPS_CHANNEL_{channel.upper()}"
        if value in ("log", "email"):
            continue
        if not _is_webhook(value):
            problems.append(
                format_lazy(
                    _('{env} is {value}: it must be "log", "email" or the http(s):// URL of a gateway.'),
                    env=env,
                    value=_shown(value),
                )
            )
        elif not settings.OPS_CHANNEL_SECRETS.get(channel):
            problems.append(
                format_lazy(
                    _(
                        "The {channel} channel's gateway has no secret: set {env}_SECRET so that its "
                        "requests are signed and the gateway can tell them from forgeries."
                    ),
                    channel=channel,
                    env=env,
                )
            )
    for name in sorted(set(settings.OPS_CHANNEL_BACKENDS) - set(settings.OPS_CHANNELS)):
        problems.append(
            format_lazy(_("OPS_CHANNEL_BACKENDS names “{name}”, which is not one of OPS_CHANNELS."), name=name)
        )
    for name, rate in sorted(settings.OPS_CHANNEL_RATES.items()):
        if name not in settings.OPS_CHANNELS:
            problems.append(
                format_lazy(_("OPS_CHANNEL_RATES names “{name}”, which is not one of OPS_CHANNELS."), name=name)
            )
        elif not isinstance(rate, int | float) or rate <= 0:
            problems.append(
                format_lazy(_("OPS_CHANNEL_{env}_RATE must be a number of sends per second above 0."), env=name.upper())
            )
    return problems

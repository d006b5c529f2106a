"""Tracked links: every http(s) link in a marketing message goes out as a signed link
to Ops Desk (``/t/<token>/``) that records the click and redirects to the original.

The token is ``django.core.signing`` over (delivery id, URL) with its own salt, so the
redirect goes only where a message we sent pointed (no open redirect), and a forged or
altered token is refused. A click is recorded as a ``clicked`` result through the same
service as the gateway's callbacks (once per instant; the delivery keeps its first
click), which also ends the customer's back-off on that channel.
"""

import re

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import Delivery
from campaigns.rows import CallbackRow
from campaigns.services.results import callbacks_record
from core.batch import ValidatedBatch
from core.errors import ApplicationError

SALT = "campaigns.click"
# A URL in plain text, up to the first space, quote or angle bracket; trailing
# punctuation that ends a sentence is left outside the link.
_URL = re.compile(r"https?://[^\s<>\"'，。！？、]+")
_TRAILING = ".,;:!?)"


def tracked_url(*, delivery_id: int, url: str) -> str:
    token = signing.dumps([delivery_id, url], salt=SALT, compress=True)
    if _prefix.get(settings.OPS_SITE_URL) is None:
        path = reverse("click", kwargs={"token": "TOKEN"})
        _prefix[settings.OPS_SITE_URL] = (settings.OPS_SITE_URL.rstrip("/") + path).rsplit("TOKEN", 1)
    head, tail = _prefix[settings.OPS_SITE_URL]
    return head + token + tail


_prefix: dict[str, list[str]] = {}


def links_tracked(body: str, *, delivery_id: int) -> str:
    """``body`` with each of its links replaced by its tracked link."""

    def swap(match: re.Match) -> str:
        url = match.group(0)
        kept = ""
        while url and url[-1] in _TRAILING:
            url, kept = url[:-1], url[-1] + kept
        return tracked_url(delivery_id=delivery_id, url=url) + kept

    return _URL.sub(swap, body) if "http" in body else body


def click_record(*, token: str) -> str:
    """Records the click of a tracked link and answers where it points."""
    try:
        delivery_id, url = signing.loads(token, salt=SALT)
    except (signing.BadSignature, ValueError, TypeError):
        raise ApplicationError(_("This link is not valid."), code="invalid_link") from None
    if not isinstance(url, str) or not _URL.fullmatch(url):
        raise ApplicationError(_("This link is not valid."), code="invalid_link")
    if Delivery.objects.filter(pk=delivery_id, sent_at__isnull=False).exists():
        row = CallbackRow(delivery=delivery_id, event="clicked", at=timezone.now())
        callbacks_record(batch=ValidatedBatch(rows=[(0, row)], errors=[], atomic=False))
    return url

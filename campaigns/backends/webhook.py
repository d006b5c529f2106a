"""The webhook backend: POSTs each hand-over as JSON to the channel's gateway.

The body is compact, sorted-key UTF-8 JSON; the request carries ``Idempotency-Key``
(the same on every retry of a delivery, so the gateway can drop a repeat),
``X-Ops-Delivery`` and, when the channel has a secret, ``X-Ops-Signature:
sha256=<hex HMAC-SHA256 of the exact body bytes>`` — what ``verify`` checks.

Answers: 2xx → sent (the gateway's ``id`` / ``message_id`` kept as provider id); 429
and 5xx → retry (with Retry-After, in seconds or as an HTTP date); a time-out or a
connection error → retry; any other status → failed (``HTTP <code>``; redirects are
not followed: a gateway that moved is a configuration to fix, and a POST of customer
data must not follow a Location to another host). Error strings never quote the
gateway's answer, which may echo the address."""

import hashlib
import hmac
import json
import math
import os
import threading
import time
from email.utils import parsedate_to_datetime

import requests
from django.conf import settings

from .base import FAILED, RETRY, SENT, Handover, Outcome, json_bytes

SIGNATURE_HEADER = "X-Ops-Signature"
#: the most of a 2xx answer read to find the gateway's message id
MAX_ANSWER_BYTES = 64 * 1024

_local = threading.local()


def session() -> requests.Session:
    """This process's Session (its connection pool). One per thread too, since a Session
    is not guaranteed thread-safe, and a fresh one after a fork: a forked worker must
    not share its parent's sockets."""
    pid = os.getpid()
    if getattr(_local, "pid", None) != pid:
        _local.session = requests.Session()
        _local.pid = pid
    return _local.session


def sign(body: bytes, secret: str) -> str:
    """``sha256=<hex HMAC-SHA256 of body keyed by secret>``."""
    if not secret:
        raise ValueError("no secret to sign with")
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str | None) -> bool:
    """Whether ``header`` is the signature of exactly ``body`` under ``secret`` (constant time)."""
    if not secret or not header:
        return False
    expected = sign(body, secret).encode("ascii")
    return hmac.compare_digest(expected, header.strip().encode("utf-8", "surrogatepass"))


def payload(handover: Handover) -> bytes:
    return json_bytes(
        {
            "delivery": handover.delivery_id,
            "idempotency_key": handover.idempotency_key,
            "customer": handover.customer,
            "channel": handover.channel,
            "address": handover.address,
            "subject": handover.subject,
            "body": handover.body,
            "category": handover.category,
            "unsubscribe_url": handover.unsubscribe_url,
        }
    )


class WebhookBackend:
    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: str = "",
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        session: requests.Session | None = None,
    ):
        self.url = url
        self.secret = secret
        self.connect_timeout = settings.OPS_CHANNEL_CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
        self.read_timeout = settings.OPS_CHANNEL_READ_TIMEOUT if read_timeout is None else read_timeout
        self._session = session

    def __repr__(self) -> str:  # never the secret
        return f"<WebhookBackend {self.url.split('?')[0]}>"

    def send(self, handover: Handover) -> Outcome:
        body = payload(handover)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": handover.idempotency_key,
            "X-Ops-Delivery": str(handover.delivery_id),
        }
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(body, self.secret)
        http = self._session or session()
        try:
            with http.post(
                self.url,
                data=body,
                headers=headers,
                timeout=(self.connect_timeout, self.read_timeout),
                allow_redirects=False,
                stream=True,
            ) as response:
                return _outcome(response)
        except requests.Timeout:  # before ConnectionError: ConnectTimeout is both
            return Outcome(RETRY, "timeout")
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
            return Outcome(RETRY, "connection error")
        except requests.RequestException as exc:  # a bad URL or header: retrying will not help
            return Outcome(FAILED, f"request error: {type(exc).__name__}")


def _outcome(response: requests.Response) -> Outcome:
    code = response.status_code
    if 200 <= code < 300:
        return Outcome(SENT, provider_id=_provider_id(response))
    if code == 429 or 500 <= code < 600:
        return Outcome(RETRY, f"HTTP {code}", retry_after=retry_after(response.headers.get("Retry-After")))
    return Outcome(FAILED, f"HTTP {code}")


def _provider_id(response: requests.Response) -> str:
    """The gateway's message id from a JSON answer ``{"id": …}`` or ``{"message_id": …}``;
    ``""`` for anything else (no JSON, bad JSON, too long an answer)."""
    content = b""
    for chunk in response.iter_content(8192):
        content += chunk
        if len(content) > MAX_ANSWER_BYTES:
            return ""
    try:
        answer = json.loads(content)
    except ValueError:
        return ""
    if not isinstance(answer, dict):
        return ""
    for key in ("id", "message_id"):
        value = answer.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)[:200]
    return ""


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)

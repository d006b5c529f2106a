"""What every channel backend takes and answers: a hand-over in, an outcome out."""

import json
import re
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

SENT, RETRY, FAILED = "sent", "retry", "failed"
Status = Literal["sent", "retry", "failed"]

_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Handover:
    """One message for one customer on one channel, as the sender hands it to a backend."""

    delivery_id: int
    idempotency_key: str
    customer: str  # the customer's external_id
    channel: str
    address: str  # phone / email / device or openid: whatever the channel addresses
    subject: str
    body: str
    category: str  # "marketing" | "transactional"
    unsubscribe_url: str = ""  # the signed one-click link; "" for transactional


@dataclass(frozen=True)
class Outcome:
    """``sent``; ``retry`` (temporary: 429, 5xx, time-out, connection error) or ``failed``
    (permanent: another 4xx, a bad address). ``error`` is short and never carries PII
    (no address, no body); ``retry_after`` is in seconds, from a Retry-After when given."""

    status: Status
    error: str = ""
    provider_id: str = ""
    retry_after: float | None = None


@runtime_checkable
class Backend(Protocol):
    name: str

    def send(self, handover: Handover) -> Outcome: ...


def json_bytes(payload: dict[str, Any]) -> bytes:
    """Compact, sorted-key UTF-8 JSON. An unpaired surrogate (which UTF-8 cannot encode)
    becomes U+FFFD, as in ``core.renderers``, so a hand-over never fails to encode."""
    try:
        return _dumps(payload).encode("utf-8")
    except UnicodeEncodeError:
        clean = {k: _SURROGATE.sub("\ufffd", v) if isinstance(v, str) else v for k, v in payload.items()}
        return _dumps(clean).encode("utf-8")


def _dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

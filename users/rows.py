"""Shapes of the rows the product backend sends (validated with pydantic).

These are the single source of truth for batch validation and for the
OpenAPI document (drf-spectacular reads pydantic models)."""

import functools
import json
import re
import zoneinfo
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.conf import settings
from pydantic import BaseModel, Field, StringConstraints, field_validator

from core.validation import Day, Flag, InputRow, Instant

ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:@\-]+$")]
ShortText = Annotated[str, StringConstraints(max_length=100, strip_whitespace=True)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=50, strip_whitespace=True)]
EventType = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]

_PHONE_RE = re.compile(r"^\+?[0-9][0-9 \-]{4,30}$")
_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
MAX_PROPERTIES_BYTES = 8192


@functools.cache
def _known_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


class _Row(InputRow):
    """Unknown fields refused, text stripped and free of NUL and unpaired surrogates,
    instants within 1970–2100 (UTC), booleans JSON booleans (see ``core.validation``)."""


class ConsentIn(_Row):
    push: Flag | None = None
    sms: Flag | None = None
    email: Flag | None = None
    wechat: Flag | None = None
    in_app: Flag | None = None


class CustomerRow(_Row):
    """A customer upsert. Fields left out keep their stored value (or the default on create)."""

    external_id: ExternalId
    name: ShortText = ""
    nickname: ShortText = ""
    phone: Annotated[str, StringConstraints(max_length=32)] = ""
    email: Annotated[str, StringConstraints(max_length=254)] = ""
    gender: Literal["unknown", "female", "male", "other"] = "unknown"
    birthday: Day | None = None
    city: Annotated[str, StringConstraints(max_length=64)] = ""
    timezone: str | None = None
    signup_at: Instant | None = None
    channel: Annotated[str, StringConstraints(max_length=64)] = ""
    referred_by: ExternalId | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] | None = None
    consent: ConsentIn | None = None
    do_not_contact: Flag | None = None

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        if value and not _PHONE_RE.match(value):
            raise ValueError("not a phone number (digits, optional leading +, spaces or dashes)")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if value and not _EMAIL_RE.match(value):
            raise ValueError("not an email address")
        return value.lower()

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None and value not in _known_timezones():
            raise ValueError(f"unknown timezone {value!r} (use an IANA name such as Asia/Shanghai)")
        return value

    @field_validator("birthday")
    @classmethod
    def _birthday(cls, value: date | None) -> date | None:
        if value is not None and not (date(1900, 1, 1) <= value <= date.today()):
            raise ValueError("birthday must be between 1900-01-01 and today")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else sorted(set(value))


class OrderRow(_Row):
    external_id: ExternalId
    customer: ExternalId = Field(description="the customer's external_id")
    amount: Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = Field(
        default=None, validate_default=True
    )
    status: Literal["paid", "refunded", "cancelled"] = "paid"
    occurred_at: Instant

    @field_validator("amount")
    @classmethod
    def _amount(cls, value: Decimal) -> Decimal:
        if value > settings.OPS_MAX_ORDER_AMOUNT:
            raise ValueError(f"amount is above the largest accepted order ({settings.OPS_MAX_ORDER_AMOUNT})")
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str:
        value = value or settings.OPS_CURRENCY
        if value != settings.OPS_CURRENCY:
            raise ValueError(
                f"currency {value} is not accepted: this installation counts money in {settings.OPS_CURRENCY}"
            )
        return value


class EventRow(_Row):
    customer: ExternalId
    type: EventType
    occurred_at: Instant
    properties: dict[str, Any] = Field(default_factory=dict)
    external_id: ExternalId | None = None

    @field_validator("properties")
    @classmethod
    def _properties(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value, ensure_ascii=False)) > MAX_PROPERTIES_BYTES:
            raise ValueError(f"properties are larger than {MAX_PROPERTIES_BYTES} bytes")
        return value


class UnsubscribeIn(_Row):
    channel: Literal["push", "sms", "email", "wechat", "in_app", "all"]


class BatchIn(BaseModel):
    atomic: bool = False


class CustomerBatchIn(BatchIn):
    items: Annotated[list[CustomerRow], Field(max_length=1000)]


class OrderBatchIn(BatchIn):
    items: Annotated[list[OrderRow], Field(max_length=1000)]


class EventBatchIn(BatchIn):
    items: Annotated[list[EventRow], Field(max_length=1000)]


class BatchErrorOut(BaseModel):
    index: int
    field: str
    message: str


class BatchOut(BaseModel):
    created: int
    updated: int
    unchanged: int
    errors: list[BatchErrorOut]

"""The shared input rules every interface applies (API rows and bodies, file imports,
admin and operator forms, query parameters).

**Instants** are accepted from ``INSTANT_MIN`` (1970-01-01T00:00:00Z) to
``INSTANT_MAX`` (2100-01-01T00:00:00Z), both included, after conversion to UTC;
anything else (year 1 at +14:00, a ``9999-12-31`` "never" placeholder) is refused,
because it cannot be shown in every timezone, rolled up or scored. In the API an
instant is an ISO 8601 string with a UTC offset (``2026-01-02T10:00:00+08:00``): a
Unix-time number is refused rather than guessed at.

**Text** never holds a NUL character or an unpaired UTF-16 surrogate (``\\u0000``,
``"\\udc00"``): neither can be stored by PostgreSQL nor encoded as UTF-8. Every
string of an input model, event property keys and values included, is checked.

**Booleans** in the API are JSON ``true``/``false``; ``"yes"`` or ``1`` is refused.
A file import's text cells (``1``, ``0``, ``true`` …) are converted as before: the
import validates with ``context=TEXT_CELLS``.
"""

import math
import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar

from django import forms
from django.utils.translation import gettext_lazy as _
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from .errors import ApplicationError

ModelT = TypeVar("ModelT", bound=BaseModel)

INSTANT_MIN = datetime(1970, 1, 1, tzinfo=UTC)
INSTANT_MAX = datetime(2100, 1, 1, tzinfo=UTC)
DATE_MIN = INSTANT_MIN.date()
DATE_MAX = INSTANT_MAX.date()

#: validation context for rows read from a file's text cells (lax booleans)
TEXT_CELLS = {"text_cells": True}

_BAD_TEXT_RE = re.compile("[\x00\ud800-\udfff]")
_ISO_DATETIME_RE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
_ISO_DATE_RE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")


# --- instants and dates ------------------------------------------------------------


def instant_in_range(value: datetime) -> bool:
    """Whether an aware instant lies in the accepted range (naive ones are not judged here)."""
    try:
        utc = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    except (OverflowError, ValueError):  # year 1 at +14:00, 9999-12-31 at -14:00
        return False
    return INSTANT_MIN <= utc <= INSTANT_MAX


def _instant_input(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATETIME_RE.match(value):
        return value
    raise PydanticCustomError(
        "instant_type",
        "Input should be an ISO 8601 date and time with a UTC offset, e.g. 2026-01-02T10:00:00+08:00",
    )


def _instant_range(value: datetime) -> datetime:
    if not instant_in_range(value):
        raise PydanticCustomError(
            "instant_range",
            "Instant out of range: it must lie between {min} and {max} (UTC)",
            {"min": INSTANT_MIN.isoformat(), "max": INSTANT_MAX.isoformat()},
        )
    return value


#: An aware instant within [INSTANT_MIN, INSTANT_MAX] (ISO 8601 string with offset, or an aware datetime).
Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_instant_input),
    AfterValidator(_instant_range),
    Field(description="ISO 8601 with a UTC offset, from 1970-01-01T00:00:00Z to 2100-01-01T00:00:00Z"),
]


def _date_input(value: Any) -> Any:
    if isinstance(value, str) and not _ISO_DATE_RE.match(value):
        raise PydanticCustomError("date_type", "Input should be an ISO 8601 date, e.g. 2026-01-02")
    if isinstance(value, bool | int | float):
        raise PydanticCustomError("date_type", "Input should be an ISO 8601 date, e.g. 2026-01-02")
    return value


#: A calendar date given as ``YYYY-MM-DD`` (or a date); range rules are the field's own.
Day = Annotated[date, BeforeValidator(_date_input)]


def _flag_input(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, bool):
        return value
    if info.context and info.context.get("text_cells"):
        return value  # a file's "1" / "true" cell: pydantic's usual conversion follows
    raise PydanticCustomError("bool_type", "Input should be a JSON boolean (true or false)")


#: A boolean: JSON true/false only (file imports may use text cells, see TEXT_CELLS).
Flag = Annotated[bool, BeforeValidator(_flag_input)]


# --- text --------------------------------------------------------------------------


def bad_text_path(value: Any, path: str = "") -> str | None:
    """The path of the first string (or mapping key) holding a NUL or an unpaired
    surrogate inside ``value`` (strings, lists, tuples and dicts, walked without
    recursion), ``""`` for ``value`` itself, or ``None`` when all text is clean."""
    stack = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if _BAD_TEXT_RE.search(item):
                return where
        elif isinstance(item, dict):
            for key, child in item.items():
                key_path = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and _BAD_TEXT_RE.search(key):
                    return where or "(key)"
                stack.append((key_path, child))
        elif isinstance(item, list | tuple):
            stack.extend((f"{where}.{i}" if where else str(i), child) for i, child in enumerate(item))
    return None


def non_finite_path(value: Any, path: str = "") -> str | None:
    """The path of the first number inside ``value`` that is not finite (``1e999999``
    parses as infinity; ``NaN``), ``""`` for ``value`` itself, or ``None``. No database
    JSON column stores one (PostgreSQL's jsonb refuses them)."""
    stack = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return where
        elif isinstance(item, dict):
            stack.extend(((f"{where}.{key}" if where else str(key)), child) for key, child in item.items())
        elif isinstance(item, list | tuple):
            stack.extend((f"{where}.{i}" if where else str(i), child) for i, child in enumerate(item))
    return None


def has_bad_text(value: str) -> bool:
    return bool(_BAD_TEXT_RE.search(value))


class CleanTextModel(BaseModel):
    """Base of every input model: no field's text (nested lists and dicts included)
    holds a NUL character or an unpaired surrogate."""

    @field_validator("*", mode="after")
    @classmethod
    def _clean_text(cls, value: Any) -> Any:
        if isinstance(value, BaseModel):
            return value  # validated by its own model
        where = bad_text_path(value)
        if where is not None:
            raise PydanticCustomError(
                "text_characters",
                "Text must not contain NUL characters or unpaired surrogates{where}",
                {"where": f" (at {where.replace('{', '(').replace('}', ')')})" if where else ""},
            )
        if isinstance(value, dict | list | tuple):
            where = non_finite_path(value)
            if where is not None:
                raise PydanticCustomError(
                    "finite_number",
                    "Numbers must be finite{where}",
                    {"where": f" (at {where.replace('{', '(').replace('}', ')')})" if where else ""},
                )
        return value


class InputRow(CleanTextModel):
    """An API input row or body: unknown fields are refused, text is stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- forms and query parameters -----------------------------------------------------


def validate_form_instant(value) -> None:
    """Form-field validator for DateTimeField and DateField: the accepted range."""
    if value is None:
        return
    if isinstance(value, datetime):
        ok = instant_in_range(value)
    elif isinstance(value, date):
        ok = DATE_MIN <= value <= DATE_MAX
    else:
        return
    if not ok:
        raise forms.ValidationError(
            _("Enter a date between %(min)s and %(max)s."),
            code="out_of_range",
            params={"min": DATE_MIN.isoformat(), "max": DATE_MAX.isoformat()},
        )


def validate_body(model: type[ModelT], data) -> ModelT:
    """Validates a (non-batch) request body; errors become the one error shape."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApplicationError(
            "The request is not valid.",
            code="invalid",
            details={
                "errors": [
                    {"field": ".".join(map(str, e["loc"])) or "body", "message": e["msg"]}
                    for e in exc.errors(include_url=False)
                ]
            },
        ) from None

"""Batch ingestion envelope: ``{"items": [...], "atomic": false}``.

Rows are validated with pydantic (compiled validators, no ORM round-trip per
row). A bad row is reported as ``{"index", "field", "message"}``; the good rows
of the batch are written unless the client asked for ``atomic``, in which case
one bad row rejects the batch with HTTP 422 and nothing is written. A malformed
envelope is HTTP 400.
"""

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from django.conf import settings
from pydantic import BaseModel, ValidationError

from .errors import ApplicationError

RowT = TypeVar("RowT", bound=BaseModel)


@dataclass
class RowError:
    index: int
    field: str
    message: str
    code: str = ""  # set where a client acts on the kind of error (points: insufficient_points, …)

    def as_dict(self) -> dict[str, Any]:
        out = {"index": self.index, "field": self.field, "message": self.message}
        return out | {"code": self.code} if self.code else out


@dataclass
class BatchResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "errors": [e.as_dict() for e in sorted(self.errors, key=lambda e: e.index)],
        }


@dataclass
class ValidatedBatch(Generic[RowT]):
    rows: list[tuple[int, RowT]]  # (index in the request, validated row)
    errors: list[RowError]
    atomic: bool

    def reject(self, index: int, field_name: str, message: str) -> None:
        """Moves a row that passed shape validation but failed a database check into the errors."""
        self.errors.append(RowError(index, field_name, message))
        self.rows = [(i, row) for i, row in self.rows if i != index]

    def reject_many(self, errors: list[RowError]) -> None:
        if not errors:
            return
        self.errors.extend(errors)
        bad = {e.index for e in errors}
        self.rows = [(i, row) for i, row in self.rows if i not in bad]

    def raise_if_atomic_and_errors(self) -> None:
        if self.atomic and self.errors:
            raise batch_rejected(self.errors)


def batch_rejected(errors: list[RowError]) -> ApplicationError:
    """The 422 of an ``atomic`` batch with a bad item: nothing is written."""
    return ApplicationError(
        "The batch was rejected: it has invalid items and atomic was requested. Nothing was written.",
        code="batch_rejected",
        details={"errors": [e.as_dict() for e in sorted(errors, key=lambda e: e.index)]},
        status=422,
    )


def _field_path(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "item"


def validate_batch(
    payload: Any, row_model: type[RowT], *, unique_field: str | None = "external_id"
) -> ValidatedBatch[RowT]:
    """Validates the envelope (400 on failure) and each row (collected as row errors)."""
    if not isinstance(payload, dict):
        raise ApplicationError("The body must be a JSON object with an 'items' list.", code="malformed_request")
    unknown = sorted(set(payload) - {"items", "atomic"})
    if unknown:
        raise ApplicationError(
            f"Unknown envelope field(s): {', '.join(unknown)}.", code="malformed_request", details={"fields": unknown}
        )
    items = payload.get("items")
    if not isinstance(items, list):
        raise ApplicationError("'items' must be a list.", code="malformed_request")
    limit = settings.OPS_BATCH_MAX_ITEMS
    if len(items) > limit:
        raise ApplicationError(
            f"A batch holds at most {limit} items; this one has {len(items)}.",
            code="batch_too_large",
            details={"max_items": limit, "items": len(items)},
        )
    atomic = payload.get("atomic", False)
    if not isinstance(atomic, bool):
        raise ApplicationError("'atomic' must be true or false.", code="malformed_request")

    rows: list[tuple[int, RowT]] = []
    errors: list[RowError] = []
    first_seen: dict[str, int] = {}
    for index, item in enumerate(items):
        try:
            row = row_model.model_validate(item)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                errors.append(RowError(index, _field_path(err["loc"]), err["msg"]))
            continue
        if unique_field:
            value = getattr(row, unique_field)
            if value is not None:
                if value in first_seen:
                    errors.append(
                        RowError(
                            index,
                            unique_field,
                            f"Duplicate {unique_field} {value!r} in this batch (first at index {first_seen[value]}).",
                        )
                    )
                    continue
                first_seen[value] = index
        rows.append((index, row))
    return ValidatedBatch(rows=rows, errors=errors, atomic=atomic)

"""Cursor pagination that refuses a tampered cursor the way DRF refuses a malformed one.

DRF decodes the cursor (base64 of ``o=<offset>&r=<reverse>&p=<position>``) and answers
404 "Invalid cursor" when it cannot be read, but passes the position to the ORM as it
came: ``p=abc`` against an integer ordering is a ``ValueError`` in the filter, a 500.
``CheckedCursorPagination`` checks the decoded position against the type of the
ordering's first field (the one the position is compared with) — a number within the
column's range for integer columns, whatever the field's ``to_python`` accepts for
others — and answers the same 404 (``{"error": {"code": "not_found", "message":
"Invalid cursor"}}``) when it does not fit."""

import re

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import connection, models
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination

_INTEGER = re.compile(r"-?[0-9]{1,19}")


class CheckedCursorPagination(CursorPagination):
    """A ``CursorPagination`` whose cursor position must be a value of the ordering field."""

    _model: type[models.Model] | None = None

    def paginate_queryset(self, queryset, request, view=None):
        self._model = getattr(queryset, "model", None)
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        try:
            position = self.position_value(cursor.position)
        except (TypeError, ValueError, ValidationError, OverflowError):
            raise NotFound(self.invalid_cursor_message) from None
        return Cursor(offset=cursor.offset, reverse=cursor.reverse, position=position)

    def _ordering_field(self) -> models.Field | None:
        if self._model is None:
            return None
        ordering = self.ordering if isinstance(self.ordering, list | tuple) else [self.ordering]
        name = ordering[0].lstrip("-")
        try:
            return self._model._meta.pk if name == "pk" else self._model._meta.get_field(name)
        except FieldDoesNotExist:
            return None

    def position_value(self, raw: str):
        """The position as a value of the ordering field; raises ``ValueError`` when it is not one."""
        if "\x00" in raw:
            raise ValueError("NUL in cursor position")
        field = self._ordering_field()
        if field is None:
            return raw
        if isinstance(field, models.IntegerField):  # AutoField and BigAutoField included
            # Digits only: no "1.5", no "1e3", no blanks or "_" that int() would let through.
            if not _INTEGER.fullmatch(raw):
                raise ValueError("not an integer")
            value = int(raw)
            low, high = connection.ops.integer_field_range(field.get_internal_type())
            if (low is not None and value < low) or (high is not None and value > high):
                raise ValueError("out of the column's range")
            return value
        value = field.to_python(raw)
        if value is None:
            raise ValueError("empty position")
        return value

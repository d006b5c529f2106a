"""The one application error type. The API's exception handler maps it to
``{"error": {"code", "message", "details"}}``; views map it to a message."""

from typing import Any


class ApplicationError(Exception):
    status_code = 400

    def __init__(self, message: str, *, code: str = "invalid", details: Any = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details if details is not None else {}
        if status is not None:
            self.status_code = status


class NotFound(ApplicationError):
    status_code = 404

    def __init__(self, message: str, *, code: str = "not_found", details: Any = None):
        super().__init__(message, code=code, details=details)


class Conflict(ApplicationError):
    status_code = 409

    def __init__(self, message: str, *, code: str = "conflict", details: Any = None):
        super().__init__(message, code=code, details=details)

"""OpenAPI: the API-key scheme and the error shape, described to drf-spectacular.

Response bodies are declared like request bodies: pydantic models on
``@extend_schema`` (drf-spectacular's pydantic extension turns them into
components), so the clients generated from the schema get typed responses."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse
from pydantic import BaseModel, Field


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "core.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "opsk_<prefix>_<secret>",
            "description": "An API key created by an admin (admin → API keys, or `manage.py create_api_key`).",
        }


class ErrorBody(BaseModel):
    code: str = Field(
        description="What went wrong, for a client to act on: invalid, malformed_request, not_found, "
        "insufficient_points, idempotency_key_reused, redemption_cancelled, batch_rejected, throttled, "
        "request_too_large, method_not_allowed, …"
    )
    message: str = Field(description="A sentence for a person.")
    details: dict[str, Any] = Field(
        description="Structured context; depends on the code (e.g. errors, fields, retry_after_seconds)."
    )


class ErrorOut(BaseModel):
    """Every API error has this one shape (see ``core.api_errors``)."""

    error: ErrorBody


_ERROR_DESCRIPTIONS = {
    400: "The request is malformed or not valid.",
    401: "No valid API key.",
    403: "The API key lacks the scope, or its user the permission.",
    404: "Not found.",
    409: "A conflict: e.g. not enough points, an idempotency key reused with another body, out of stock, "
    "a redeem replayed after its redemption was cancelled (redemption_cancelled).",
    413: "The body is larger than the server accepts (request_too_large; details.max_bytes).",
    422: "An atomic batch with an invalid item: nothing was written.",
    429: "Too many requests for this API key.",
}
COMMON_ERRORS = (401, 403, 413, 429)


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """The error responses of an operation (the common ones plus ``statuses``), all in the error shape."""
    return {
        s: OpenApiResponse(ErrorOut, description=_ERROR_DESCRIPTIONS[s]) for s in sorted({*COMMON_ERRORS, *statuses})
    }

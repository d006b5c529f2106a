"""Every API error has one shape: ``{"error": {"code", "message", "details"}}``."""

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from . import error_pages
from .errors import ApplicationError

_CODES = {
    exceptions.ParseError: "malformed_request",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
    exceptions.ValidationError: "invalid",
}


def error_response(code: str, message: str, details=None, status_code: int = 400, headers=None) -> Response:
    body = {"error": {"code": code, "message": message, "details": details if details is not None else {}}}
    return Response(body, status=status_code, headers=headers)


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return error_response(exc.code, exc.message, exc.details, exc.status_code)
    if isinstance(exc, RequestDataTooBig):  # raised by Django when DRF reads the body
        return error_response(
            "request_too_large",
            _("The request body is larger than the %(limit)s bytes accepted.")
            % {"limit": settings.DATA_UPLOAD_MAX_MEMORY_SIZE},
            {"max_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE},
            413,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, exceptions.ValidationError):
        message, details = "The request is not valid.", response.data
    else:
        message, details = str(exc.detail), {}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            details = {"retry_after_seconds": int(exc.wait)}
    if response.status_code == status.HTTP_401_UNAUTHORIZED and "WWW-Authenticate" not in response:
        response["WWW-Authenticate"] = "Bearer"
    response.data = {"error": {"code": code, "message": message, "details": details}}
    return response


# --- Errors Django answers before (or instead of) a DRF view ------------------------
# ``ops_site.urls`` points handler400/403/404/500 here: under ``/api/`` they answer in
# the error shape above; operators' pages get the site's own error pages (``core.error_pages``).

API_PREFIX = "/api/"


def _is_api(request) -> bool:
    return request.path.startswith(API_PREFIX)


def json_error(code: str, message: str, status_code: int, details=None) -> JsonResponse:
    body = {"error": {"code": code, "message": message, "details": details if details is not None else {}}}
    return JsonResponse(body, status=status_code)


def _too_large() -> JsonResponse:
    return json_error(
        "request_too_large",
        _("The request body is larger than the %(limit)s bytes accepted.")
        % {"limit": settings.DATA_UPLOAD_MAX_MEMORY_SIZE},
        413,
        {"max_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE},
    )


def handler400(request, exception=None):
    too_large = isinstance(exception, RequestDataTooBig)
    if _is_api(request):
        return _too_large() if too_large else json_error("malformed_request", _("The request is malformed."), 400)
    response = error_pages.page_400(request, exception)
    if too_large:
        response.status_code = 413
    return response


def handler403(request, exception=None):
    if _is_api(request):
        return json_error("permission_denied", _("You do not have permission to perform this action."), 403)
    return error_pages.page_403(request, exception)


def handler404(request, exception=None):
    if _is_api(request):
        return json_error("not_found", _("There is no API endpoint at this path."), 404)
    return error_pages.page_404(request, exception)


def handler500(request):
    if _is_api(request):
        return json_error("server_error", _("The server failed to answer this request."), 500)
    return error_pages.page_500(request)

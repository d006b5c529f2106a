from urllib.parse import unquote

from django.core.exceptions import BadRequest
from django.http import JsonResponse
from django.middleware import common as middleware_common
from django.utils import translation

from .validation import has_bad_text


class ApiLanguageMiddleware:
    """API clients get English messages unless they ask for another language with
    Accept-Language; operators' pages keep the site default (Simplified Chinese)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/") and "HTTP_ACCEPT_LANGUAGE" not in request.META:
            translation.activate("en")
            request.LANGUAGE_CODE = "en"
        return self.get_response(request)


class RefuseBadTextInUrlMiddleware:
    """A path or query string holding a NUL character or an unpaired surrogate (decoded:
    ``/api/v1/customers/a%00b``, ``?q=%00``) is refused before any view reads it — no
    database stores such text. The API answers 400 ``malformed_request`` in the error
    shape, operators' pages Django's 400 page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self._bad(request):
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {
                        "error": {
                            "code": "malformed_request",
                            "message": "The path or query string holds a NUL character or an unpaired surrogate.",
                            "details": {},
                        }
                    },
                    status=400,
                )
            raise BadRequest("NUL character or unpaired surrogate in the URL")
        return self.get_response(request)

    @staticmethod
    def _bad(request) -> bool:
        if has_bad_text(request.path) or has_bad_text(request.path_info):
            return True
        raw = request.META.get("QUERY_STRING", "")
        if "%00" in raw or "\x00" in raw or has_bad_text(unquote(raw)):
            return True
        return any(has_bad_text(key) or any(has_bad_text(v) for v in values) for key, values in request.GET.lists())


class CommonMiddleware(middleware_common.CommonMiddleware):
    """Django's, except that an API write to a path missing its trailing slash is not
    redirected (a redirect loses the body, and with DEBUG on Django raises instead):
    it answers the JSON 404 the path has. Reads (GET, HEAD) are still redirected."""

    def should_redirect_with_slash(self, request):
        if request.path_info.startswith("/api/") and request.method not in ("GET", "HEAD"):
            return False
        return super().should_redirect_with_slash(request)

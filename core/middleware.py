from django.middleware import common as middleware_common
from django.utils import translation


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


class CommonMiddleware(middleware_common.CommonMiddleware):
    """Django's, except that an API write to a path missing its trailing slash is not
    redirected (a redirect loses the body, and with DEBUG on Django raises instead):
    it answers the JSON 404 the path has. Reads (GET, HEAD) are still redirected."""

    def should_redirect_with_slash(self, request):
        if request.path_info.startswith("/api/") and request.method not in ("GET", "HEAD"):
            return False
        return super().should_redirect_with_slash(request)

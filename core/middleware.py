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

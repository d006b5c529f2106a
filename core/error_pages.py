"""The operator pages' error pages (400, 403, 404, 500) in the site's layout and the
operator's language, with a way back. ``ops_site.urls`` wires them as Django's
``handler400`` … ``handler500`` (API paths answer in the JSON error shape instead).

The 500 page is rendered without the request: no session, user or database is
touched, so it renders when the database itself is what failed."""

from django.http import HttpResponse
from django.template import loader
from django.views.decorators.csrf import requires_csrf_token


def _page(request, template_name: str, status: int) -> HttpResponse:
    return HttpResponse(loader.render_to_string(template_name, request=request), status=status)


@requires_csrf_token
def page_400(request, exception=None):
    return _page(request, "400.html", 400)


@requires_csrf_token
def page_403(request, exception=None):
    return _page(request, "403.html", 403)


@requires_csrf_token
def page_404(request, exception=None):
    return _page(request, "404.html", 404)


def page_500(request):
    # No request context: the context processors would read the session and the user.
    return HttpResponse(loader.render_to_string("500.html"), status=500)

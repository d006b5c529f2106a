"""ops_site.urls with the operator error pages wired, plus views that fail on purpose."""

from django.core.exceptions import BadRequest, PermissionDenied
from django.db import connection
from django.urls import path

from ops_site.urls import urlpatterns as site_urlpatterns


def _bad_request(request):
    raise BadRequest("bad")


def _denied(request):
    raise PermissionDenied


def _boom(request):
    raise RuntimeError("boom")


def _database_down(request):
    # What a lost database looks like from a view: every query fails.
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM table_that_does_not_exist_anywhere")


urlpatterns = [
    path("test-errors/400", _bad_request),
    path("test-errors/403", _denied),
    path("test-errors/500", _boom),
    path("test-errors/500-db", _database_down),
    *site_urlpatterns,
]

handler400 = "core.error_pages.page_400"
handler403 = "core.error_pages.page_403"
handler404 = "core.error_pages.page_404"
handler500 = "core.error_pages.page_500"

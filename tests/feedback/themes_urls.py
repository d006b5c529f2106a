"""The site's URLs with the themes pages at /feedback/themes/, where the lead mounts
them (ops_site/urls.py does not include them on this branch yet)."""

from django.urls import include, path

from ops_site.urls import urlpatterns as site_urlpatterns

urlpatterns = [path("feedback/themes/", include("feedback.urls_themes")), *site_urlpatterns]

handler400 = "core.api_errors.handler400"
handler403 = "core.api_errors.handler403"
handler404 = "core.api_errors.handler404"
handler500 = "core.api_errors.handler500"

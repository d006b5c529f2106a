from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from campaigns.urls_public import tracking_urlpatterns
from core.health import healthz

api_v1 = [
    path("", include("users.urls_api")),
    path("", include("console.urls_api")),  # the customer list and profile, composed
    path("", include("incentives.urls_api")),
    path("", include("segments.urls_api")),
    path("", include("feedback.urls_api")),
    path("", include("communities.urls_api")),
    path("", include("campaigns.urls_api")),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("customers/", include("console.urls")),  # search (users) + the 360 page
    path("points/", include("incentives.urls")),
    path("segments/", include("segments.urls")),
    # The ticket queue; reports; the themes; the customers' one-click CSAT/NPS pages (no login).
    path("feedback/", include("feedback.urls")),
    path("feedback/reports/", include("feedback.urls_reports")),
    path("feedback/themes/", include("feedback.urls_themes")),
    path("survey/", include("feedback.urls_public")),
    path("unsubscribe/", include("campaigns.urls_public")),
    path("t/", include(tracking_urlpatterns)),  # tracked links in marketing messages
    path("communities/", include("communities.urls")),
    path("campaigns/", include("campaigns.urls")),
    path("", include("dashboards.urls")),
]

# Under /api/ Django's own errors answer in the API's JSON error shape; operators' pages keep HTML.
handler400 = "core.api_errors.handler400"
handler403 = "core.api_errors.handler403"
handler404 = "core.api_errors.handler404"
handler500 = "core.api_errors.handler500"

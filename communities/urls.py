"""The operators' community pages under /communities/, one URL module per area."""

from . import urls_alerts, urls_calendar, urls_groups, urls_health, urls_risk, urls_templates

app_name = "communities"
urlpatterns = [
    *urls_groups.urlpatterns,
    *urls_templates.urlpatterns,
    *urls_calendar.urlpatterns,
    *urls_health.urlpatterns,
    *urls_alerts.urlpatterns,
    *urls_risk.urlpatterns,
]

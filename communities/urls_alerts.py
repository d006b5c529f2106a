"""The alerts pages: the list of the visible groups' alerts, one alert (acknowledge,
dismiss), and the rules' noise."""

from django.urls import path

from . import views_alerts

urlpatterns = [
    path("alerts/", views_alerts.alert_list, name="alerts"),
    path("alerts/rules/", views_alerts.rule_noise, name="alert-rules"),
    path("alerts/<int:alert_id>/", views_alerts.alert_detail, name="alert"),
    path("alerts/<int:alert_id>/acknowledge", views_alerts.alert_acknowledge, name="alert-acknowledge"),
    path("alerts/<int:alert_id>/dismiss", views_alerts.alert_dismiss, name="alert-dismiss"),
]

from django.urls import path

from . import views_reports

app_name = "feedback_reports"
urlpatterns = [
    path("", views_reports.reports_page, name="index"),
    path("nps/", views_reports.nps_list, name="nps_list"),
    path("nps/<int:survey_id>/", views_reports.nps_detail, name="nps_detail"),
    path("nps/<int:survey_id>/send/", views_reports.nps_send, name="nps_send"),
]

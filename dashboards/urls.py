from django.urls import path

from . import views

app_name = "dashboards"
urlpatterns = [
    path("", views.home, name="home"),
    path("dashboard/segments-card", views.segments_card, name="segments_card"),
]

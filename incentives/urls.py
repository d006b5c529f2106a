from django.urls import path

from . import views

app_name = "incentives"
urlpatterns = [
    path("", views.points_home, name="home"),
    path("<str:external_id>/adjust", views.points_adjust, name="adjust"),
]

"""The customers' one-click survey pages: no login, the signed link is the key."""

from django.urls import path

from . import views_public

app_name = "survey"
urlpatterns = [
    path("csat/<str:token>/", views_public.csat, name="csat"),
    path("nps/<str:token>/", views_public.nps, name="nps"),
]

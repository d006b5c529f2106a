"""The operators' campaign pages under /campaigns/."""

from django.urls import path

from . import views

app_name = "campaigns"
urlpatterns = [
    path("", views.campaign_list, name="list"),
    path("new", views.campaign_new, name="new"),
    path("<int:campaign_id>/", views.campaign_detail, name="detail"),
    path("<int:campaign_id>/edit", views.campaign_edit, name="edit"),
    path("<int:campaign_id>/launch", views.campaign_launch, name="launch"),
    path("<int:campaign_id>/pause", views.campaign_pause, name="pause"),
    path("<int:campaign_id>/cancel", views.campaign_cancel, name="cancel"),
]

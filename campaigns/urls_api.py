"""Campaigns' REST endpoints under /api/v1/."""

from django.urls import path

from . import api

urlpatterns = [
    path("messages", api.MessageApi.as_view(), name="messages"),
    path("deliveries/callbacks", api.CallbackApi.as_view(), name="delivery-callbacks"),
    path("campaigns", api.CampaignCreateApi.as_view(), name="campaigns"),
    path("campaigns/<int:campaign_id>", api.CampaignApi.as_view(), name="campaign"),
    path("campaigns/<int:campaign_id>/launch", api.CampaignLaunchApi.as_view(), name="campaign-launch"),
    path("campaigns/<int:campaign_id>/pause", api.CampaignPauseApi.as_view(), name="campaign-pause"),
]

"""Campaigns' REST endpoints under /api/v1/."""

from django.urls import path

from . import api

urlpatterns = [
    path("messages", api.MessageApi.as_view(), name="messages"),
    path("deliveries/callbacks", api.CallbackApi.as_view(), name="delivery-callbacks"),
]

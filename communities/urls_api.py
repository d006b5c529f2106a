"""The bots' REST endpoints under /api/v1/communities/."""

from django.urls import path

from . import api

urlpatterns = [
    path("communities/<int:group_id>/messages/batch", api.MessageBatchApi.as_view(), name="community-messages-batch"),
    path("communities/<int:group_id>/checkins/batch", api.CheckInBatchApi.as_view(), name="community-checkins-batch"),
    path("communities/<int:group_id>/activities/<str:code>", api.ActivityApi.as_view(), name="community-activity"),
    path(
        "communities/<int:group_id>/activities/<str:code>/signups/batch",
        api.SignupBatchApi.as_view(),
        name="community-signups-batch",
    ),
]

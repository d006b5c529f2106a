from django.urls import path

from . import api

urlpatterns = [
    path("segments/", api.SegmentListApi.as_view(), name="segments-list"),
    path("segments/<slug:slug>/members", api.SegmentMembersApi.as_view(), name="segment-members"),
]

from django.urls import path

from . import views

app_name = "segments"
urlpatterns = [
    path("", views.segment_list, name="list"),
    path("new", views.segment_create, name="create"),
    path("upload", views.segment_upload, name="upload"),
    path("preview", views.segment_preview, name="preview"),
    path("transitions", views.transitions, name="transitions"),
    path("recompute", views.recompute, name="recompute"),
    path("<slug:slug>/", views.segment_detail, name="detail"),
    path("<slug:slug>/edit", views.segment_edit, name="edit"),
]

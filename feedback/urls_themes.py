from django.urls import path

from . import views_themes as views

# Included by the lead at /feedback/themes/.
app_name = "feedback_themes"
urlpatterns = [
    path("", views.theme_list, name="list"),
    path("roadmap/", views.roadmap, name="roadmap"),
    path("roadmap/<int:item_id>/status", views.roadmap_item_status, name="roadmap-status"),
    path("<int:theme_id>/", views.theme_detail, name="detail"),
    path("<int:theme_id>/rename", views.theme_rename, name="rename"),
    path("<int:theme_id>/confirm", views.theme_confirm, name="confirm"),
    path("<int:theme_id>/dismiss", views.theme_dismiss, name="dismiss"),
    path("<int:theme_id>/roadmap", views.theme_to_roadmap, name="to-roadmap"),
]

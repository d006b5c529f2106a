"""The health pages: the comparison across groups, a group's trends, an on-demand roll-up."""

from django.urls import path

from . import views_health as views

urlpatterns = [
    path("health/", views.health_index, name="health_index"),
    path("groups/<int:group_id>/health/", views.health_group, name="health_group"),
    path("groups/<int:group_id>/health/rollup/", views.health_rollup, name="health_rollup"),
]

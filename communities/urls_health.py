"""The health pages: the comparison across groups, a group's trends, an on-demand roll-up."""

from django.urls import path

from . import views_health as views

urlpatterns = [
    path("health/", views.health_index, name="health"),
    path("groups/<int:group_id>/health/", views.health_group, name="group-health"),
    path("groups/<int:group_id>/health/rollup/", views.health_rollup, name="health-rollup"),
]

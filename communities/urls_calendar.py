"""The calendar pages: the week's mix across groups, and each group's week and posts."""

from django.urls import path

from . import views_calendar as views

urlpatterns = [
    path("calendar/", views.calendar_index, name="calendar_index"),
    path("groups/<int:group_id>/calendar/", views.calendar_week, name="calendar_week"),
    path("groups/<int:group_id>/calendar/plan/", views.calendar_plan, name="calendar_plan"),
    path(
        "groups/<int:group_id>/calendar/posts/<int:post_id>/edit/", views.calendar_post_edit, name="calendar_post_edit"
    ),
    path(
        "groups/<int:group_id>/calendar/posts/<int:post_id>/done/", views.calendar_post_done, name="calendar_post_done"
    ),
    path(
        "groups/<int:group_id>/calendar/posts/<int:post_id>/skip/", views.calendar_post_skip, name="calendar_post_skip"
    ),
]

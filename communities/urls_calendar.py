"""The calendar pages: the week's mix across groups, and each group's week and posts."""

from django.urls import path

from . import views_calendar as views

urlpatterns = [
    path("calendar/", views.calendar_index, name="calendar"),
    path("groups/<int:group_id>/calendar/", views.calendar_week, name="group-calendar"),
    path("groups/<int:group_id>/calendar/plan/", views.calendar_plan, name="post-plan"),
    path("groups/<int:group_id>/calendar/posts/<int:post_id>/edit/", views.calendar_post_edit, name="post-edit"),
    path("groups/<int:group_id>/calendar/posts/<int:post_id>/done/", views.calendar_post_done, name="post-done"),
    path("groups/<int:group_id>/calendar/posts/<int:post_id>/skip/", views.calendar_post_skip, name="post-skip"),
]

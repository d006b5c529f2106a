"""The groups pages: the list is the communities section's home (/communities/)."""

from django.urls import path

from . import views_groups as views

urlpatterns = [
    path("", views.group_list, name="groups"),
    path("groups/new", views.group_create, name="group-new"),
    path("groups/<int:group_id>/", views.group_detail, name="group"),
    path("groups/<int:group_id>/edit", views.group_edit, name="group-edit"),
    path("groups/<int:group_id>/members/add", views.member_add, name="member-add"),
    path("groups/<int:group_id>/members/<int:membership_id>/leave", views.member_leave, name="member-leave"),
    path("groups/<int:group_id>/members/<int:membership_id>/role", views.member_role, name="member-role"),
    path("groups/<int:group_id>/staff/grant", views.staff_grant, name="staff-grant"),
    path("groups/<int:group_id>/staff/<int:staff_id>/revoke", views.staff_revoke, name="staff-revoke"),
]

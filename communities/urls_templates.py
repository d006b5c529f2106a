"""The SOP template pages under /communities/templates/."""

from django.urls import path

from . import views_templates as views

urlpatterns = [
    path("templates/", views.template_list, name="templates"),
    path("templates/new", views.template_new, name="template-new"),
    path("templates/<int:template_id>/", views.template_detail, name="template"),
    path("templates/<int:template_id>/write", views.version_new, name="template-write"),
    path("templates/versions/<int:version_id>/approve", views.version_approve, name="template-approve"),
    path("templates/versions/<int:version_id>/reject", views.version_reject, name="template-reject"),
    path("templates/versions/<int:version_id>/preview", views.version_preview, name="template-preview"),
]

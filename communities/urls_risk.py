"""The risk-member pages of a group: its record and the form to warn, mute or remove."""

from django.urls import path

from . import views_risk

urlpatterns = [
    path("groups/<int:group_id>/risk/", views_risk.risk_members, name="group-risk"),
    path("groups/<int:group_id>/risk/act", views_risk.risk_act, name="risk-act"),
]

"""The risk-member pages of a group: its record and the form to warn, mute or remove."""

from django.urls import path

from . import views_risk

urlpatterns = [
    path("<int:group_id>/risk/", views_risk.risk_members, name="risk-members"),
    path("<int:group_id>/risk/act", views_risk.risk_act, name="risk-act"),
]

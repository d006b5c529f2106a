from django.urls import path

from . import api

urlpatterns = [
    path("tickets", api.TicketCreateApi.as_view(), name="tickets"),
    path("tickets/<int:ticket_id>", api.TicketDetailApi.as_view(), name="ticket-detail"),
    path("tickets/<int:ticket_id>/messages", api.TicketMessageApi.as_view(), name="ticket-messages"),
    path("customers/<str:external_id>/tickets", api.CustomerTicketsApi.as_view(), name="customer-tickets"),
]

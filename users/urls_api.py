from django.urls import path

from . import api

urlpatterns = [
    path("customers/batch", api.CustomerBatchApi.as_view(), name="customers-batch"),
    path("orders/batch", api.OrderBatchApi.as_view(), name="orders-batch"),
    path("events/batch", api.EventBatchApi.as_view(), name="events-batch"),
    path("customers/<str:external_id>/unsubscribe", api.CustomerUnsubscribeApi.as_view(), name="customer-unsubscribe"),
]

from django.urls import path

from . import api

urlpatterns = [
    path("customers/", api.CustomerListApi.as_view(), name="customers-list"),
    path("customers/<str:external_id>", api.CustomerProfileApi.as_view(), name="customer-profile"),
]

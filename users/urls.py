from django.urls import path

from . import views

app_name = "users"
urlpatterns = [
    path("", views.customer_search, name="search"),
    path("<str:external_id>/", views.customer_detail, name="detail"),
]

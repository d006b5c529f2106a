"""The customer pages under /customers/: users' search and the 360 page composed
here. They keep the ``users:`` URL names (``users:search``, ``users:detail``) that
every app's templates link to, so no link changes with where a page lives."""

from django.urls import path

from users import views as users_views

from . import views

app_name = "users"
urlpatterns = [
    path("", users_views.customer_search, name="search"),
    path("<str:external_id>/", views.customer_detail, name="detail"),
]

"""The customers' one-click unsubscribe link: no login, the signed token is the key."""

from django.urls import path

from . import views_public

urlpatterns = [path("<str:token>/", views_public.unsubscribe, name="unsubscribe")]
tracking_urlpatterns = [path("<str:token>/", views_public.click, name="click")]

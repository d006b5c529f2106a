"""The alerts pages (stub: filled in by the alerts work)."""

urlpatterns = []

"""The groups pages (stub: filled in by the groups work)."""

urlpatterns = []

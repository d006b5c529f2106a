"""The health pages (stub: filled in by the health work)."""

urlpatterns = []

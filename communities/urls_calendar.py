"""The calendar pages (stub: filled in by the calendar work)."""

urlpatterns = []
